"""The local stack without Docker: Apache Kafka (KRaft), FerretDB on a PostgreSQL cluster of its own, and our
services as local processes, composed into the whole system.

    paths.py          where things are: the root, the cache, the tools on PATH
    errors.py         StackError (TimedOut), and `say`
    process.py        run() (every subprocess), free ports, Server (spawn, wait, stop; a context manager)
    waiting.py        until(predicate, timeout, what, process=): the one wait; an HTTP endpoint's readiness
    netns.py          commands inside a network namespace (the network-fault tests)
    kafka.py          a one-node Kafka from Maven Central's jars; waiting for it; creating topics
    kafka_cluster.py  three of them: the production shape (replication factor 3)
    postgres.py       a throwaway PostgreSQL cluster, and the index that makes history reads fast
    ferretdb.py       FerretDB, built with our change, on that PostgreSQL
    service.py        a local api or web, and how it is wired (its environment)
    system.py         all of it composed: what make dev, make bench and the tests start

    gomodule.py       Go programs from the module proxy: one environment, one build cache, patched sources
    builds.py         the record of what was built into the cache and how long it took

The cache is filled by scripts/fetch.py (make dev: Kafka's jars and FerretDB; make test: everything).
"""
