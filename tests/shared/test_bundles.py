"""Candidate bundles: equal files give equal bytes; what is not source is refused; diffs by file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared import bundles
from shared.blobs import digest_of


def test_equal_files_give_equal_bundles_and_unpack_to_the_same_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        (folder / "pkg").mkdir(parents=True)
        (folder / "candidate.py").write_text("print('hi')\n")
        (folder / "pkg" / "model.py").write_text("x = 1\n")
    first = bundles.pack(a, ["pkg/model.py", "candidate.py"])
    assert digest_of(first) == digest_of(bundles.pack(b, ["candidate.py", "pkg/model.py"]))
    assert bundles.unpack(first, tmp_path / "c") == ["candidate.py", "pkg/model.py"]
    assert (tmp_path / "c" / "pkg" / "model.py").read_text() == "x = 1\n"


def test_links_binaries_and_escaping_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04\xff")
    os.symlink("/etc/passwd", tmp_path / "link.py")
    for name in ("model.pkl", "link.py", "../outside.py", "/etc/passwd"):
        with pytest.raises(bundles.BundleError):
            bundles.pack(tmp_path, [name])
    with pytest.raises(bundles.BundleError):
        bundles.files_of(b'{"format": 1, "files": {"../../x.py": "boom"}}')
    with pytest.raises(bundles.BundleError):
        bundles.files_of(b"not json")


def test_diff_shows_changed_and_new_files(tmp_path: Path) -> None:
    (tmp_path / "candidate.py").write_text("a = 1\n")
    parent = bundles.pack(tmp_path, ["candidate.py"])
    (tmp_path / "candidate.py").write_text("a = 2\n")
    (tmp_path / "features.py").write_text("f = 0\n")
    child = bundles.pack(tmp_path, ["candidate.py", "features.py"])
    text = bundles.diff(parent, child)
    assert "-a = 1" in text and "+a = 2" in text and "+++ b/features.py" in text


def test_a_last_line_without_its_newline_is_marked_as_git_marks_it(tmp_path: Path) -> None:
    """Else it would run into the next file's `---` header, and a reader would see one file."""
    (tmp_path / "a.py").write_text("x = 1")
    parent = bundles.pack(tmp_path, ["a.py"])
    (tmp_path / "a.py").write_text("x = 2")
    (tmp_path / "b.py").write_text("y = 0")
    text = bundles.diff(parent, bundles.pack(tmp_path, ["a.py", "b.py"]))
    marker = "\\ No newline at end of file\n"
    assert f"-x = 1\n{marker}+x = 2\n{marker}--- /dev/null\n+++ b/b.py\n" in text and text.endswith(
        f"+y = 0\n{marker}"
    )


def test_a_folder_swapped_for_a_link_and_an_oversized_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "secret.py").write_text("key = 1\n")
    (tmp_path / "cand").mkdir()
    os.symlink(tmp_path / "host", tmp_path / "cand" / "pkg")
    with pytest.raises(bundles.BundleError):
        bundles.pack(tmp_path / "cand", ["pkg/secret.py"])
    (tmp_path / "cand" / "big.py").write_bytes(b"#" * (bundles.MAX_BUNDLE_BYTES + 1))
    with pytest.raises(bundles.BundleError, match="exceed"):
        bundles.pack(tmp_path / "cand", ["big.py"])
