from scripts.lag import LagReader

from ..api.test_consumer import event
from ..support import wait_until


def test_lag_shows_the_backlog_per_partition_and_drains_to_zero_once_api_consumes(system):
    system.produce_raw([event(f"user-{i}") for i in range(30)])
    reader = LagReader(system.kafka.bootstrap, system.group, system.topic)
    try:
        backlog = reader.read()
        assert backlog.total == 30
        assert len(backlog.partitions) == 8 and sum(1 for n in backlog.partitions.values() if n) > 1
        system.start_api()
        wait_until(lambda: reader.read().total == 0, 20, "the lag to drain")
    finally:
        reader.close()
