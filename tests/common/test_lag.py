import pytest

from scripts.stack.waiting import until
from services.common.lag import LagReader, partition_lag

from ..api.test_consumer import event


def test_lag_shows_the_backlog_per_partition_and_drains_to_zero_once_api_consumes(system):
    system.produce_raw([event(f"user-{i}") for i in range(30)])
    reader = LagReader.at(system.kafka.address, system.group, system.topic)
    try:
        backlog = reader.read()
        assert backlog.total == 30
        assert len(backlog.partitions) == 8 and sum(1 for n in backlog.partitions.values() if n) > 1
        system.start_api()
        until(lambda: reader.read().total == 0, 20, "the lag to drain")
    finally:
        reader.close()


@pytest.mark.unit
def test_lag_counts_from_the_committed_offset_or_from_the_log_start_where_nothing_was_committed():
    lag = partition_lag(ends={0: 100, 1: 50, 2: 7, 3: 0}, committed={0: 90, 1: 50, 2: -1}, starts={2: 2, 3: 0})
    assert lag.partitions == {0: 10, 1: 0, 2: 5, 3: 0}
    assert lag.total == 15
    # A commit past the end (a truncated log) is no negative lag.
    assert partition_lag({0: 5}, {0: 9}, {}).partitions == {0: 0}
