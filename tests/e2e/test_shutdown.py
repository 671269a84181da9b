"""SIGTERM, as Kubernetes sends it: in-flight work finishes, nothing accepted is lost."""

import re
import signal
import time

import requests

from scripts.loadgen.keyed import Traffic, accepted_ids, post_buys
from scripts.stack.waiting import until

from ..support import buy_body


def accepted_so_far(system) -> float:
    metrics = requests.get(system.web.metrics_url, timeout=5).text
    return float(re.search(r"^purchases_accepted_total (\S+)$", metrics, re.M).group(1))


def test_sigterm_on_web_lets_in_flight_buys_finish_and_every_accepted_one_is_stored(system):
    system.start_api()
    system.start_web()
    # Buys keep coming until web is gone (a fixed number of them could all be answered before the signal lands).
    with Traffic(system.web_url, users=9, burst=50, run="web-sigterm") as traffic:
        until(lambda: accepted_so_far(system) > 0, 10, "traffic to be flowing")
        time.sleep(0.3)
        system.web.process.send_signal(signal.SIGTERM)
        assert system.web.process.wait(20) == 0
        until(lambda: any(r.cut for r in traffic.requests), 10, "buys sent after web stopped")

    accepted = traffic.accepted_ids()
    refused = [r.status for r in traffic.requests if r.status != 202]
    print(f"\n[web SIGTERM] sent={len(traffic.requests)} accepted={len(accepted)} refused_or_cut={len(refused)}")
    assert 0 < len(accepted) < len(traffic.requests), "SIGTERM did not land mid-traffic"
    assert set(refused) <= {None, 503}
    until(lambda: set(accepted) <= set(system.stored_ids()), 30, "every accepted purchase to be stored")
    assert sorted(system.stored_ids()) == sorted(accepted)


def test_sigterm_on_api_commits_what_it_stored_and_leaves_the_group(system):
    system.start_api()
    system.start_web()
    accepted = accepted_ids(post_buys(system.web_url, [buy_body("z") for _ in range(50)]))
    until(lambda: system.committed_total() == 50, 20, "the purchases to be stored and committed")
    assert system.group_members()

    system.api.process.send_signal(signal.SIGTERM)
    assert system.api.process.wait(20) == 0
    assert system.group_members() == [], "api did not leave its consumer group"
    assert "consumer stopped and left the group" in system.log("api")
    assert sorted(system.stored_ids()) == sorted(accepted)
