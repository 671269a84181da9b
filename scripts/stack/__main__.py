"""`python -m scripts.stack fetch`: Kafka's jars (mvn) and FerretDB (go build), once, into $PURCHASE_CACHE
(default ~/.cache/purchase-system)."""

import sys

from .ferretdb import ferretdb_binary
from .kafka import kafka_libs
from .process import fetch_command

if __name__ == "__main__":
    sys.exit(fetch_command(sys.argv, __doc__, [("Kafka jars", kafka_libs), ("FerretDB", ferretdb_binary)]))
