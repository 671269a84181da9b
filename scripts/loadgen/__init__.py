"""The load generator behind scripts/load.py, one job a module:

    outcomes.py      what a run records (each request's outcome; percentiles)
    sending.py       sending purchases, open loop at a rate or as fast as a concurrency allows
    verifying.py     --verify: every accepted purchase visible exactly once in its user's history
    lag_sampling.py  --lag: the consumer group's lag during the run
    reporting.py     the progress bar, the report, the summary and --plot
    cli.py           the command line
"""
