"""web as `python -m services.web` runs it, with kafka-python producer options of the `tuning` phase's over its own
(BENCH_PRODUCER_OPTIONS, a JSON object: batch_size, compression_type, max_in_flight_requests_per_connection, ...)."""

import functools
import json
import os
import runpy

from services.web import publisher

publisher.KafkaProducer = functools.partial(publisher.KafkaProducer, **json.loads(os.environ["BENCH_PRODUCER_OPTIONS"]))

if __name__ == "__main__":
    runpy.run_module("services.web", run_name="__main__", alter_sys=True)
