"""Failures in the middle of the pipeline, on real servers: nothing accepted is lost or stored twice.

Each test prints what it observed (accepted vs stored); run with -s to see the figures.
"""

import signal
import time

import pytest

from scripts.loadgen.keyed import Traffic, accepted_ids, post_buys
from scripts.stack.waiting import until

from ..support import buy_body


@pytest.mark.service_env(CONSUMER_BATCH_SIZE="25")
def test_a_consumer_killed_mid_stream_and_restarted_stores_every_accepted_purchase_exactly_once(system):
    system.start_web()
    results = post_buys(system.web_url, [buy_body(f"user-{i % 40}") for i in range(2000)], concurrency=50)
    accepted = accepted_ids(results)
    assert len(accepted) == 2000, {status for status, _ in results}

    system.start_api()
    until(lambda: len(system.stored_ids()) >= 100, 30, "the consumer to be under way")
    system.api.kill()  # SIGKILL: no commit, no leaving the group, batches in hand are simply gone
    stored_at_kill = len(system.stored_ids())
    committed_at_kill = system.committed_total()
    assert stored_at_kill < len(accepted), "the consumer finished before it could be killed mid-stream"

    system.start_api()
    until(lambda: len(system.stored_ids()) == len(accepted), 60, "every accepted purchase to be stored")
    until(lambda: system.committed_total() == len(accepted), 20, "every offset to be committed")
    stored = system.stored_ids()
    print(f"\n[consumer SIGKILL] accepted={len(accepted)} stored_at_kill={stored_at_kill} "
          f"committed_at_kill={committed_at_kill} stored_after_restart={len(stored)} unique={len(set(stored))}")
    assert sorted(stored) == sorted(accepted)


def test_the_database_stopped_for_10s_under_traffic_loses_nothing_and_the_consumer_keeps_its_group(system):
    system.start_api()
    system.start_web()
    members_before = until(system.group_members, 10, "the consumer to join its group")

    with Traffic(system.web_url, users=25, burst=20, pause_s=0.1, run="database-down") as traffic:
        time.sleep(3)
        system.ferretdb.kill()
        outage_started = time.monotonic()
        time.sleep(10)
        system.ferretdb.start()
        outage_s = time.monotonic() - outage_started
        time.sleep(3)

    accepted = traffic.accepted_ids()
    until(lambda: len(system.stored_ids()) >= len(accepted), 60, "the backlog to be stored")
    stored = system.stored_ids()
    members_after = system.group_members()
    print(f"\n[database down {outage_s:.1f}s] sent={len(traffic.requests)} accepted={len(accepted)} "
          f"stored={len(stored)} unique={len(set(stored))} retries_logged={system.log('api').count('store failed')} "
          f"group members before={members_before} after={members_after}")
    assert len(accepted) == len(traffic.requests) > 0, "web refused purchases although Kafka was up"
    assert sorted(stored) == sorted(accepted)
    assert members_after == members_before, "the consumer lost its place in the group"
    assert "store failed, retrying" in system.log("api")


def test_rebalances_under_traffic_lose_and_duplicate_nothing(system):
    system.start_api()
    first = system.api
    system.start_web()
    with Traffic(system.web_url, users=40, burst=40, run="rebalances") as traffic:
        time.sleep(2)
        second = system.start_another_api()  # joins the group: the partitions are split between the two
        until(lambda: len(system.group_members()) == 2, 20, "the second consumer to join")
        time.sleep(3)
        first.process.send_signal(signal.SIGTERM)  # leaves the group: its partitions move to the second
        assert first.process.wait(30) == 0
        time.sleep(3)

    accepted = traffic.accepted_ids()
    until(lambda: len(system.stored_ids()) >= len(accepted), 60, "every accepted purchase to be stored")
    stored = system.stored_ids()
    print(f"\n[rebalances] accepted={len(accepted)} stored={len(stored)} unique={len(set(stored))} "
          f"members_at_end={len(system.group_members())}")
    assert len(accepted) == len(traffic.requests) > 0
    assert sorted(stored) == sorted(accepted)
    assert "batch stored" in second.log_path.read_text(), "the second consumer never stored anything"
