"""`make lag` (scripts/lag.py) against the real Kafka: the group's lag per partition, as its README line says."""

import re
import sys

from scripts.loadgen.keyed import post_buys
from scripts.stack.paths import ROOT
from scripts.stack.process import run

from ..support import buy_body


def test_make_lag_prints_each_partitions_backlog_of_a_group_that_has_not_consumed_yet(system):
    system.start_web()  # no api: nothing is consumed, so every accepted purchase is lag
    answers = post_buys(system.web_url, [buy_body(f"lag-{i}") for i in range(40)], concurrency=8)
    assert {status for status, _ in answers} == {202}
    printed = run([sys.executable, "-m", "scripts.lag", "--bootstrap", system.bootstrap, "--group", system.group,
                   "--topic", system.topic], cwd=ROOT, timeout=60).stdout
    line = re.fullmatch(r"\d\d:\d\d:\d\d total=(\d+)((?: p\d+=\d+)+)\n", printed)
    assert line, printed
    per_partition = dict(re.findall(r"p(\d+)=(\d+)", line.group(2)))
    assert int(line.group(1)) == 40 == sum(map(int, per_partition.values()))
    assert len(per_partition) == 8 and sum(1 for n in per_partition.values() if int(n)) > 1
