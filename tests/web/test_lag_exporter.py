"""web exports the api's consumer group lag, read from Kafka, so it grows while the consumer cannot store."""

import signal
import time

import pytest

from scripts.loadgen.keyed import accepted_ids, post_buys
from scripts.stack.waiting import until

from ..support import buy_body, samples


def exported_lag(system) -> dict[int, float]:
    """web's consumer_group_lag series for the system's group, by partition."""
    return {int(labels["partition"]): value for labels, value in samples(system.web.metrics_url, "consumer_group_lag")
            if labels["group"] == system.group and labels["topic"] == system.topic}


def consumer_view(system) -> float:
    """The api's own consumer_lag (updated between its batches), summed."""
    return sum(value for _, value in samples(system.api.metrics_url, "consumer_lag"))


@pytest.mark.service_env(LAG_EXPORT_INTERVAL_S="1")
def test_the_exported_lag_grows_while_the_database_is_frozen_and_drains_after(system):
    system.start_api()
    system.start_web()
    first = post_buys(system.web_url, [buy_body(f"lag-{i}") for i in range(40)])
    assert len(accepted_ids(first)) == 40
    lag = until(lambda: (lag := exported_lag(system)) and sum(lag.values()) == 0 and lag, 30,
                "the exported lag to show the first buys committed")
    assert sorted(lag) == list(range(8)), "one series per partition of the topic"

    system.ferretdb.process.send_signal(signal.SIGSTOP)
    try:
        frozen = post_buys(system.web_url, [buy_body(f"lag-{i}") for i in range(300)])
        assert len(accepted_ids(frozen)) == 300  # web takes them: Kafka is fine
        grown = until(lambda: (total := sum(exported_lag(system).values())) >= 300 and total, 15,
                      "the exported lag to count every purchase the frozen database cannot store")
        time.sleep(3)
        print(f"\ndatabase frozen: web's consumer_group_lag {grown:.0f}, {sum(exported_lag(system).values()):.0f} "
              f"3 s later; the api's own consumer_lag {consumer_view(system):.0f}")
    finally:
        system.ferretdb.process.send_signal(signal.SIGCONT)
    until(lambda: sum(exported_lag(system).values()) == 0, 60, "the exported lag to drain once it thaws")
    assert len(system.stored_ids()) == 340
