"""How long the producer waits to fill a batch (linger), chosen per purchase by how busy web is.

A linger of 2 ms packs more purchases into each Kafka request at peak (higher throughput, lower p99 at half of
peak), but every purchase of a quiet moment waits those 2 ms for company that never comes: at 500 req/s that
was p50 3.7 ms instead of 1.4 ms. So the producer lingers only while at least `crowd` purchases are already
awaiting their acknowledgement; alone or nearly, a purchase is sent at once.

kafka-python has no public setter: its RecordAccumulator reads `config['linger_ms']` each time its sender
asks which batches are ready (kafka/producer/record_accumulator.py, `ready()`, kafka-python 3.0, pinned in
requirements.txt), so changing that value takes effect for the batches waiting now.
"""

from __future__ import annotations

from kafka import KafkaProducer


class Linger:
    def __init__(self, producer: KafkaProducer, linger_ms: int, crowd: int) -> None:
        self._config = producer._accumulator.config
        self._linger_ms = linger_ms
        self._crowd = crowd
        self._config["linger_ms"] = 0

    def before_send(self, awaiting: int) -> None:
        """Called with the number of purchases awaiting acknowledgement, before this one is sent."""
        self._config["linger_ms"] = self._linger_ms if awaiting >= self._crowd else 0
