"""`make soak`: the whole system at a steady rate for a long while (30 minutes by default), watched for drift.

    python -m bench.soak [--minutes 30] [--rate 200] [--reads 20]

Starts its own Kafka and FerretDB (like `make bench`), api and web, then sends `--rate` keyed buys a second,
open loop, and `--reads` history reads a second. Every 10 s it samples RSS and open descriptors of web and api,
the consumer group's lag, p50/p99 of the buys and reads answered in those 10 s, and their 503 rate. At the end,
every buy is accounted for by scripts/loadgen's harness (an unknown outcome retried with its key; each purchase
stored, none lost, nothing unexpected), each figure's drift from the first five minutes to the last five, a plot
(bench/results/soak.png) and bench/results/soak.json.

A benchmark, not a test: it prints figures; only a lost or an unexpected purchase makes it exit 1.

One module a job:

    drive.py     the buys (the loadgen harness's keyed traffic) and the reads, open loop, with the sampler
    sampling.py  one sample of the processes, the lag and the last 10 s of answers
    drift.py     the first minutes against the last: the figures and their table
    plot.py      soak.png
    __main__.py  the command line: starts the system, drives it, accounts, writes the results
"""
