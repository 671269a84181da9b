"""Traffic and its accounting: the load generator behind scripts/load.py, and the harness the fault tests, the
sign-in tests and the soak drive the system with. One job a module:

    keyed.py         keyed traffic (open loop at a rate, or bursts), and one POST /api/buy for every caller
    accounting.py    the verdict on keyed traffic: unknown outcomes retried with their keys, then each request
                     accepted or refused, stored or lost, and whatever is stored that nobody asked for
    outcomes.py      what a run records (each request's outcome; percentiles)
    sending.py       sending purchases, open loop at a rate or as fast as a concurrency allows
    verifying.py     --verify: every accepted purchase visible exactly once in its user's history
    lag_sampling.py  --lag: the consumer group's lag during the run
    reporting.py     the progress bar, the report, the summary and --plot
    cli.py           the command line
"""
