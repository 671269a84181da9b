"""Network faults under keyed traffic (60 buys/s), every request accounted for (tests/faults.py): silent
partitions (packets dropped, no RST), a broker cut off from its peers, and a slow, lossy link.

Each host is a network namespace on one bridge (network.py); a fault is a set of iptables rules inside one
host, removed to heal it. Run with -s for each scenario's accounting line.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests
from kafka.admin import KafkaAdminClient

from scripts.loadgen.accounting import account
from scripts.loadgen.keyed import Traffic
from scripts.stack.waiting import until

from .slowlink import MARK, SlowLink

RATE = 60
REFUSAL_BOUND_S = 10  # a buy is answered within the 4-s publish timeout; a loaded machine adds (test_kafka_faults)


def first_202_after(traffic: Traffic, moment: float, timeout: float = 60) -> float:
    def seen():
        after = [r.answered_at for r in traffic.requests if r.status == 202 and r.sent_at >= moment]
        return min(after) if after else None
    return until(seen, timeout, "a 202 after the fault ended") - moment


def report(scenario: str, result, extra: str = "") -> None:
    print(f"\n[{scenario}] {result.line()}{extra}")


def assert_nothing_lost(result) -> None:
    assert result.lost == [] and result.unexpected == []
    assert result.stored == result.sent


def test_web_silently_partitioned_from_every_broker_for_20s_refuses_in_bounds_and_heals_itself(placed, lab):
    placed.start_api()
    web = placed.start_web()
    brokers = [host.address for host in lab.brokers]
    with Traffic(placed.web_url, rate=RATE, run="web-kafka") as traffic:
        time.sleep(5)
        lab.hosts["web"].cut_off(*brokers)
        cut_at = time.monotonic()
        time.sleep(20)
        lab.hosts["web"].heal()
        healed_at = time.monotonic()
        back_after = first_202_after(traffic, healed_at)
        time.sleep(5)
    during = [r for r in traffic.requests if cut_at + 5 <= r.sent_at < healed_at]
    result = account(placed.web_url, traffic.requests, placed.stored_ids, recovered_at=healed_at)
    slowest = max(r.answered_at - r.sent_at for r in traffic.requests if r.answered_at)
    report("web <-> all brokers, 20 s", result, f" first_202_after_heal={back_after:.2f}s "
           f"accepted_while_cut={sum(r.status == 202 for r in during)}/{len(during)} slowest_answer={slowest:.2f}s")
    assert sum(r.status == 202 for r in during) == 0 and len(during) > 0, "the partition did not show"
    assert result.slowest_refusal_s < REFUSAL_BOUND_S and slowest < REFUSAL_BOUND_S
    assert back_after < 30, "web did not heal within 30 s of the network"
    assert web.process.poll() is None, "web had to be restarted"
    assert requests.get(f"{placed.web_url}/healthz", timeout=5).status_code == 200
    assert_nothing_lost(result)


def leaders(bootstrap: str, topic: str) -> list[int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        (described,) = admin.describe_topics([topic])
        return [p["leader_id"] for p in described["partitions"]]
    finally:
        admin.close()


def test_one_broker_cut_off_from_its_peers_but_not_its_clients_loses_nothing_and_leadership_moves(placed, lab):
    placed.start_api()
    placed.start_web()
    isolated = lab.brokers[2]  # node 3
    peers = [host.address for host in lab.brokers[:2]]
    survivors = ",".join(node.address for node in lab.kafka.nodes[:2])
    before = leaders(lab.kafka.address, placed.topic)
    assert 3 in before, "node 3 leads none of the topic's partitions: nothing to move"
    with Traffic(placed.web_url, rate=RATE, run="isolated-broker") as traffic:
        time.sleep(5)
        isolated.cut_off(*peers)
        cut_at = time.monotonic()
        moved = until(lambda: 3 not in (now := leaders(survivors, placed.topic)) and now, 30,
                      "the isolated broker's partitions to get other leaders")
        moved_after = time.monotonic() - cut_at
        time.sleep(max(0.0, 25 - moved_after))
        isolated.heal()
        healed_at = time.monotonic()
        time.sleep(10)
    after_move = [r for r in traffic.requests if cut_at + moved_after + 5 <= r.sent_at < healed_at]
    result = account(placed.web_url, traffic.requests, placed.stored_ids, recovered_at=healed_at)
    report("one broker cut off from its peers, 25 s", result,
           f" leaders_before={before} leaders_moved_in={moved_after:.1f}s to={moved} "
           f"accepted_after_the_move={sum(r.status == 202 for r in after_move)}/{len(after_move)}")
    assert_nothing_lost(result)
    assert sum(r.status == 202 for r in after_move) >= 0.95 * len(after_move), "leaders moved, yet web refuses"
    lab.kafka.wait_for_brokers(3)


def test_api_partitioned_from_ferretdb_for_30s_keeps_its_group_membership_and_stores_everything_once(placed, lab):
    placed.start_api()
    placed.start_web()
    members_before = until(placed.group_members, 20, "the consumer to join its group")
    with Traffic(placed.web_url, rate=RATE, run="api-db") as traffic:
        time.sleep(5)
        lab.hosts["api"].cut_off(lab.hosts["ferretdb"].address)
        time.sleep(15)
        members_during = placed.group_members()
        stored_during = len(placed.stored_ids())
        time.sleep(15)
        lab.hosts["api"].heal()
        healed_at = time.monotonic()
        time.sleep(5)
    result = account(placed.web_url, traffic.requests, placed.stored_ids, recovered_at=healed_at)
    members_after = placed.group_members()
    report("api <-> FerretDB, 30 s", result, f" members before={members_before} during={members_during} "
           f"after={members_after} stored_15s_into_the_cut={stored_during}")
    assert members_before == members_during == members_after, "the consumer lost its place in the group"
    assert result.refused_503 == 0 and result.no_answer == 0  # web never needed the database to accept
    assert_nothing_lost(result)


class CommittedOffsets:
    """The group's committed offset per partition, sampled twice a second from a thread, to catch any step back."""

    def __init__(self, bootstrap: str, group: str) -> None:
        self.bootstrap, self.group = bootstrap, group
        self.backwards: list[tuple[int, int, int]] = []  # (partition, from, to)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        last: dict[int, int] = {}
        try:
            while not self._stop.wait(0.5):
                try:
                    offsets = admin.list_group_offsets(self.group).get(self.group, {})
                except Exception:  # noqa: BLE001 - a sample missed while the coordinator moves is not a finding
                    continue
                self.samples += 1
                for tp, meta in offsets.items():
                    if meta.offset < last.get(tp.partition, -1):
                        self.backwards.append((tp.partition, last[tp.partition], meta.offset))
                    last[tp.partition] = max(last.get(tp.partition, -1), meta.offset)
        finally:
            admin.close()

    def __enter__(self) -> CommittedOffsets:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(15)


@pytest.mark.service_env(CONSUMER_SESSION_TIMEOUT_MS="10000")  # Kafka's 45 s, shortened to keep the test short
def test_api_partitioned_from_kafka_past_its_session_timeout_rejoins_and_never_commits_backwards(placed, lab):
    placed.start_api()
    placed.start_web()
    members_before = until(placed.group_members, 20, "the consumer to join its group")
    brokers = [host.address for host in lab.brokers]
    with CommittedOffsets(lab.kafka.address, placed.group) as offsets, \
            Traffic(placed.web_url, rate=RATE, run="api-kafka") as traffic:
        time.sleep(5)
        lab.hosts["api"].cut_off(*brokers)
        cut_at = time.monotonic()
        until(lambda: placed.group_members() == [], 40, "the silent consumer to be evicted")
        evicted_after = time.monotonic() - cut_at
        time.sleep(5)
        lab.hosts["api"].heal()
        healed_at = time.monotonic()
        members_after = until(placed.group_members, 60, "the consumer to rejoin its group")
        time.sleep(5)
    result = account(placed.web_url, traffic.requests, placed.stored_ids, recovered_at=healed_at, settle_s=90)
    report("api <-> Kafka past the session timeout", result,
           f" members before={members_before} evicted_after={evicted_after:.1f}s after={members_after} "
           f"offset_samples={offsets.samples} backwards={offsets.backwards}")
    assert offsets.backwards == [], "a committed offset went backwards"
    assert offsets.samples > 20
    assert result.refused_503 == 0 and result.no_answer == 0  # web's side of the network was whole
    assert_nothing_lost(result)


def test_a_slow_lossy_link_between_web_and_kafka_for_60s_loses_nothing_and_leaves_no_wedged_producer(placed, lab,
                                                                                                     tmp_path):
    web_host, brokers = lab.hosts["web"], [host.address for host in lab.brokers]
    relay = SlowLink(tmp_path / "slowlink", web_host.netns, delay_ms=200, jitter_ms=50)
    try:
        relay.start(timeout=15)
        web_host.redirect(brokers, relay.port, unless_mark=MARK)  # every connection web makes to Kafka, relayed
        placed.start_api()
        placed.start_web()
        with Traffic(placed.web_url, rate=RATE, run="slow-link") as traffic:
            time.sleep(5)
            relay.slow(True)
            web_host.lose(0.05, *brokers)
            slow_at = time.monotonic()
            time.sleep(60)
            relay.slow(False)
            web_host.iptables("-F", "OUTPUT")  # the loss; the relay stays, now fast
            healed_at = time.monotonic()
            time.sleep(10)
        slow = sorted(r.answered_at - r.sent_at for r in traffic.requests
                      if slow_at + 2 <= r.sent_at < healed_at - 5 and r.status == 202)
        after = [r for r in traffic.requests if r.sent_at >= healed_at + 3]
        result = account(placed.web_url, traffic.requests, placed.stored_ids, recovered_at=healed_at)
        fast = sorted(r.answered_at - r.sent_at for r in after if r.status == 202)
        p50, p99 = (slow[int(len(slow) * q)] * 1000 for q in (0.5, 0.99))
        fast_p99 = fast[int(len(fast) * 0.99)]
        report("web <-> Kafka 200 +/- 50 ms, 5 % loss, 60 s", result,
               f" buys while slow: p50={p50:.0f}ms p99={p99:.0f}ms ({len(slow)} accepted); after: "
               f"{sum(r.status == 202 for r in after)}/{len(after)} accepted, p99 {fast_p99 * 1000:.0f}ms")
        assert p50 >= 150, "the link was not slow: is the relay in the way?"
        assert_nothing_lost(result)
        # No wedged producer: once the link is fast again, every buy is accepted, and quickly.
        assert all(r.status == 202 for r in after) and fast_p99 < 1.0
        assert requests.get(f"{placed.web_url}/healthz", timeout=5).status_code == 200
    finally:
        placed.stop()  # web first: it holds connections through the relay
        relay.stop()
