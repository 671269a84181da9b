"""Consumer-group lag from Kafka itself: committed offset vs end offset, per partition. KEDA scales on this; web
exports it (consumer_group_lag); services/common/lag.py measures it.

    python -m scripts.lag [--bootstrap 127.0.0.1:9092] [--group purchase-group] [--topic purchases] [--watch]
"""

from __future__ import annotations

import argparse
import time

from services.common.lag import LagReader
from services.core.config import KafkaConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = KafkaConfig()  # the services' own defaults, as make dev runs them
    parser.add_argument("--bootstrap", default=defaults.bootstrap_servers)
    parser.add_argument("--group", default=defaults.consumer_group)
    parser.add_argument("--topic", default=defaults.topic)
    parser.add_argument("--watch", action="store_true", help="print a line every second until Ctrl-C")
    args = parser.parse_args()
    reader = LagReader.at(args.bootstrap, args.group, args.topic)
    try:
        while True:
            lag = reader.read()
            per_partition = " ".join(f"p{p}={n}" for p, n in lag.partitions.items())
            print(f"{time.strftime('%H:%M:%S')} total={lag.total} {per_partition}", flush=True)
            if not args.watch:
                break
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()


if __name__ == "__main__":
    main()
