"""`python -m scripts.stack fetch`: Kafka's jars (mvn), FerretDB (go build) and Keycloak (mvn), once, into
$PURCHASE_CACHE (default ~/.cache/purchase-system)."""

import sys

from .ferretdb import ferretdb_binary
from .kafka import kafka_libs
from .keycloak import keycloak_home
from .process import fetch_command

if __name__ == "__main__":
    sys.exit(fetch_command(sys.argv, __doc__, [("Kafka jars", kafka_libs), ("FerretDB", ferretdb_binary),
                                                ("Keycloak", keycloak_home)]))
