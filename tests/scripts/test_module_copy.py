"""Copies of Go module sources (FerretDB, tilt) that the build changes and then deletes, as the module cache
leaves them: every file and folder read-only, the top folder too."""

import os
import stat

import pytest

from scripts.stack.paths import remove_tree, writable_copy

pytestmark = pytest.mark.unit  # make check: no server, no build


def read_only_module(root):
    (root / "internal" / "handler").mkdir(parents=True)
    (root / "go.mod").write_text("module example.com/m\n")
    (root / "internal" / "handler" / "find.go").write_text("package handler\n")
    for path in sorted(root.rglob("*"), reverse=True) + [root]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return root


def test_a_module_copy_is_writable_by_its_owner_everywhere_including_its_top_folder(tmp_path):
    module = read_only_module(tmp_path / "module")
    copy = tmp_path / "cache" / "src"
    writable_copy(module, copy)
    paths = [copy, *copy.rglob("*")]
    assert len(paths) == 5
    assert [p for p in paths if not os.stat(p).st_mode & stat.S_IWUSR] == []
    (copy / "internal" / "handler" / "pushdown.go").write_text("package handler\n")  # what a patch does
    remove_tree(copy)
    assert not copy.exists()


def test_a_read_only_copy_left_by_an_interrupted_build_is_replaced(tmp_path):
    module = read_only_module(tmp_path / "module")
    leftover = tmp_path / "cache" / "src"
    leftover.parent.mkdir()
    read_only_module(leftover)
    (tmp_path / "module" / "go.mod").chmod(0o644)
    (tmp_path / "module" / "go.mod").write_text("module example.com/m // new\n")
    writable_copy(module, leftover)
    assert (leftover / "go.mod").read_text() == "module example.com/m // new\n"
