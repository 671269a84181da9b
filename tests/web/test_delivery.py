"""When web's record of deliveries says the producer is wedged (pure logic, no servers)."""

import pytest

from services.web.delivery import RECENT_S, DeliveryHealth

pytestmark = pytest.mark.unit  # make check: no server, no build


def test_failures_for_longer_than_the_limit_while_kafka_answers_mean_wedged():
    health = DeliveryHealth(wedged_after_s=60)
    health.failed(100.0)
    health.failed(159.0)
    assert not health.wedged(159.0, kafka_reachable=True)
    health.failed(160.0)
    assert health.wedged(160.0, kafka_reachable=True)


def test_an_acknowledgement_clears_the_failures():
    health = DeliveryHealth(wedged_after_s=60)
    health.failed(100.0)
    health.acknowledged()
    health.failed(170.0)
    assert not health.wedged(170.0, kafka_reachable=True)


def test_failures_while_kafka_is_unreachable_are_an_outage_not_a_wedge():
    health = DeliveryHealth(wedged_after_s=60)
    health.failed(100.0)
    health.failed(200.0)
    assert not health.wedged(200.0, kafka_reachable=False)
    assert health.wedged(200.0, kafka_reachable=True)


def test_old_failures_without_traffic_since_do_not_make_a_quiet_web_look_wedged():
    health = DeliveryHealth(wedged_after_s=60)
    health.failed(100.0)
    health.failed(170.0)
    assert health.wedged(170.0 + RECENT_S, kafka_reachable=True)
    assert not health.wedged(170.0 + RECENT_S + 1, kafka_reachable=True)
