"""Every log call's `extra=` keys, read from the source: none may collide with a LogRecord attribute.

logging raises KeyError("Attempt to overwrite 'created' in LogRecord") for such a key, at the moment the line
is logged, which is how the topics Job once created its topics and then exited 1.
"""

import ast
import logging
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit  # make check: no server, no build

ROOT = Path(__file__).resolve().parents[2]
RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def extra_keys(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "extra" and isinstance(keyword.value, ast.Dict):
                    found += [(key.lineno, key.value) for key in keyword.value.keys
                              if isinstance(key, ast.Constant) and isinstance(key.value, str)]
    return found


def test_the_scan_finds_extra_keys_and_flags_a_reserved_one(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('log.info("x", extra={"created": 1, "topic": "t"})\n')
    keys = extra_keys(sample)
    assert keys == [(1, "created"), (1, "topic")]
    assert {key for _, key in keys} & RESERVED == {"created"}


def test_no_log_call_in_the_services_or_scripts_uses_a_reserved_extra_key():
    files = [p for folder in ("services", "scripts", "bench") for p in (ROOT / folder).rglob("*.py")]
    scanned = {p: extra_keys(p) for p in files}
    assert sum(len(keys) for keys in scanned.values()) > 20, "the scan found almost no log calls: is it broken?"
    clashes = [f"{p.relative_to(ROOT)}:{line} {key!r}" for p, keys in scanned.items() for line, key in keys
               if key in RESERVED]
    assert not clashes, f"extra keys that logging refuses: {clashes}"
