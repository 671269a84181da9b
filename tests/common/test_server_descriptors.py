"""services/common/server.allow_descriptors: the process may hold as many connections as it admits."""

import resource
import subprocess
import sys

from scripts.stack.paths import ROOT

PROBE = """
import resource, sys
from services.common.server import allow_descriptors
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
print(allow_descriptors(int(sys.argv[2])), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def limits_after(soft: int, max_connections: int) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, str(soft), str(max_connections)], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def test_a_low_soft_limit_is_raised_to_cover_the_connection_limit():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    wanted = 1000 + 256
    expected = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    assert limits_after(300, 1000) == (expected, expected)


def test_a_soft_limit_already_high_enough_is_left_alone():
    assert limits_after(1500, 1000) == (1500, 1500)
