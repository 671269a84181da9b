"""The local stack without Docker: Apache Kafka (KRaft), FerretDB on a PostgreSQL cluster of its own, and our
services as local processes, composed into the whole system.

    process.py        the foundation: paths, StackError, say, run, free ports, Server (spawn, wait, stop)
    kafka.py          a one-node Kafka from Maven Central's jars; waiting for it; creating topics
    kafka_cluster.py  three of them: the production shape (replication factor 3)
    postgres.py       a throwaway PostgreSQL cluster, and the index that makes history reads fast
    ferretdb.py       FerretDB, built with our change, on that PostgreSQL
    service.py        a local api or web, and how it is wired (its environment)
    system.py         all of it composed: what make dev, make bench and the tests start

    python -m scripts.stack fetch     # Kafka's jars (mvn) and FerretDB (go build), once, into the cache
"""
