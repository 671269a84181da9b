"""web with two workers on its port (WEB_WORKERS=2, services/common/workers.py), on the real Kafka and FerretDB: the
port shared, the metrics summed by the supervisor, a worker killed or frozen under keyed traffic replaced, and every
request accounted for; SIGTERM drains them all."""

import os
import signal
import time
from pathlib import Path

import requests

from scripts.loadgen.accounting import account
from scripts.loadgen.keyed import Traffic, post_buys
from scripts.stack.waiting import until

from ..support import buy_body, samples

TWO = {"WEB_WORKERS": "2"}


def workers(web) -> list[int]:
    """The supervisor's children: its workers' process ids."""
    pid = web.process.pid
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def every_worker_can_publish(web) -> bool:
    """/readyz on 20 new connections (the kernel spreads them over the workers) all say buys are ready: start_web
    waited for one worker's readiness, and the other's producer may still be connecting."""
    return all(requests.get(f"{web.address}/readyz", timeout=5).json()["buys"] == "ready" for _ in range(20))


def accepted_total(web) -> float:
    return sum(value for _, value in samples(web.metrics_url, "purchases_accepted_total"))


def test_two_workers_share_the_port_and_the_supervisor_serves_their_metrics_summed(system):
    system.start_api()
    web = system.start_web(env=TWO)
    assert len(workers(web)) == 2
    until(lambda: every_worker_can_publish(web), 30, "both workers' producers connected")
    answers = post_buys(system.web_url, [buy_body(f"w-{i % 20}") for i in range(1000)], concurrency=64)
    assert {status for status, _ in answers} == {202}
    until(lambda: accepted_total(web) == 1000, 10, "the two workers' counts summed")
    served = {pid: int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[11]) for pid in workers(web)}
    print(f"\n[two workers] accepted {accepted_total(web):.0f}; CPU ticks by worker {served}")
    assert all(ticks > 0 for ticks in served.values())
    assert samples(web.metrics_url, "kafka_can_take_purchases") == [({}, 1.0)]
    until(lambda: len(set(system.stored_ids())) == 1000, 30, "every purchase stored")


def test_a_worker_sigkilled_and_one_sigstopped_under_traffic_are_replaced_and_every_request_is_stored_once(system):
    system.start_api()
    web = system.start_web(env=TWO)
    with Traffic(system.web_url, rate=80, run="workers") as traffic:
        time.sleep(3)
        first = workers(web)
        os.kill(first[0], signal.SIGKILL)
        killed_at = time.monotonic()
        until(lambda: len(workers(web)) == 2 and first[0] not in workers(web), 20, "the killed worker replaced")
        replaced_s = time.monotonic() - killed_at
        time.sleep(3)
        frozen = first[1]
        os.kill(frozen, signal.SIGSTOP)
        frozen_at = time.monotonic()
        until(lambda: frozen not in workers(web) and len(workers(web)) == 2, 40, "the frozen worker replaced",
              interval=0.5)
        unfrozen_s = time.monotonic() - frozen_at
        recovered = time.monotonic()
        time.sleep(5)
    result = account(system.web_url, traffic.requests, system.stored_ids, recovered)
    print(f"\n[worker SIGKILL: replaced in {replaced_s:.1f} s; worker SIGSTOP: replaced in {unfrozen_s:.1f} s] "
          f"{result.line()}")
    assert replaced_s < 5 and unfrozen_s < 15
    assert result.lost == [] and result.unexpected == [] and result.stored == result.sent
    assert result.first_202_after_recovery_s is not None and result.first_202_after_recovery_s < 2
    assert "worker replaced" in system.log("web")


def test_sigterm_drains_both_workers_and_every_accepted_purchase_is_stored(system):
    system.start_api()
    web = system.start_web(env=TWO)
    children = workers(web)
    with Traffic(system.web_url, users=9, burst=50, run="workers-sigterm") as traffic:
        until(lambda: traffic.accepted_ids(), 10, "traffic to be flowing")
        time.sleep(0.5)
        web.process.send_signal(signal.SIGTERM)
        assert web.process.wait(30) == 0
        until(lambda: any(r.cut for r in traffic.requests), 10, "buys sent after web stopped")
    assert not any(Path(f"/proc/{pid}").exists() for pid in children), "a worker outlived its supervisor"
    accepted = traffic.accepted_ids()
    assert 0 < len(accepted) < len(traffic.requests)
    assert {r.status for r in traffic.requests if r.status != 202} <= {None, 503}
    until(lambda: set(accepted) <= set(system.stored_ids()), 30, "every accepted purchase stored")
