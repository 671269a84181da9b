"""The README stays true to the code (make check): every setting the services read is in its configuration table,
every path and module its layout names exists, and every `make` target it names is the Makefile's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit  # make check: no server, no build

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
# Where the services read their settings: the typed configuration, and the topics command's own three.
READERS = [ROOT / "services" / "core" / "config.py", ROOT / "services" / "api" / "topics.py"]


def settings_read() -> set[str]:
    found = set()
    for path in READERS:
        found |= set(re.findall(r'(?:env|environ)\.get\("([A-Z][A-Z0-9_]+)"', path.read_text()))
        found |= set(re.findall(r'_(?:int|bool)\(env, "([A-Z][A-Z0-9_]+)"', path.read_text()))
    return found


def settings_documented(readme: str = README) -> set[str]:
    table = readme[readme.index("## Configuration"):readme.index("## Kubernetes")]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_every_setting_the_services_read_is_in_the_configuration_table():
    read = settings_read()
    assert len(read) >= 30, read  # the parse finds them (a change of style would find none)
    missing = read - settings_documented()
    assert not missing, f"settings read by the code but not in the README's table: {sorted(missing)}"


def test_the_check_fails_when_a_setting_leaves_the_table():
    without = README.replace("| `MONGODB_WRITE_CONCERN` |", "| (removed) |")
    assert "MONGODB_WRITE_CONCERN" in settings_read() - settings_documented(without)


def layout() -> list[tuple[str, str]]:
    block = README[README.index("## Layout"):]
    block = block[block.index("```\n") + 4:]
    block = block[:block.index("```")]
    entries, current = [], ""
    for line in block.splitlines():
        head, _, rest = line.strip().partition("  ")
        if line.startswith(" "):  # a continuation of the entry above
            entries[-1] = (entries[-1][0], entries[-1][1] + " " + line.strip())
        else:
            current = head
            entries.append((current, rest.strip()))
    return entries


def test_every_path_and_module_the_layout_names_exists():
    entries = layout()
    assert len(entries) >= 10
    for path, description in entries:
        assert (ROOT / path).exists(), path
        # Other paths named on the line (scripts/fetch.py, values-sasl.yaml, docs' files, ...).
        for other in re.findall(r"[\w./-]+\.(?:py|md|yaml)\b", description):
            candidates = [ROOT / other, ROOT / path / other, ROOT / path / "templates" / other]
            assert any(c.exists() for c in candidates), f"{other} (on the line of {path})"
        for folder in re.findall(r"\b([a-z_]+)/(?=[\s,)]|$)", description):
            assert (ROOT / path / folder).is_dir(), f"{path}{folder}/"
        # The modules a package's line lists: each word before its "(...)" or comma.
        if (ROOT / path / "__init__.py").exists() or path.startswith(("services/", "scripts/stack", "scripts/cont")):
            listed = re.sub(r"\([^)]*\)", "", description).split(":")[-1]
            for word in (w.strip() for w in listed.split(",")):
                if re.fullmatch(r"[a-z_]+", word):
                    assert (ROOT / path / f"{word}.py").exists() or (ROOT / path / word).is_dir(), f"{path}{word}"


def test_every_make_target_the_readme_names_exists():
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    named = set(re.findall(r"`make ([a-z][a-z-]*)", README)) | set(re.findall(r"^make ([a-z][a-z-]*)", README, re.M))
    assert named, "the README names make targets"
    assert not named - targets, f"make targets the README names that the Makefile lacks: {sorted(named - targets)}"
