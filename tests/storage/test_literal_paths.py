"""Storage paths are literal: `[ ] * ?` in a user's path is never a pattern (local, memory://, S3 through
moto), and names with spaces, &, #, % and non-ASCII round-trip. No Ray."""

from __future__ import annotations

import os
import subprocess

import pytest

from genart.errors import StorageError
from genart.storage.fs import cat_files, check_writable, exists, files_under, get_fs, join, list_dir, remove

NAMES = ["col 1", "a&b", "c#d", "e%20f", "grüße-日本", "col[1]", "x*y", "q?"]


@pytest.fixture(params=["local", "memory", "s3"])
def base(request, tmp_path):
    """A fresh root URI on each backend."""
    if request.param == "local":
        yield str(tmp_path / "root")
        return
    if request.param == "memory":
        uri = f"memory://literal-{request.node.name}".replace("[", "-").replace("]", "")
        fs, root = get_fs(uri)
        yield uri
        if fs.exists(root):
            fs.rm(root, recursive=True)  # the test's own unique root, without pattern characters
        return
    request.getfixturevalue("s3_server")
    yield request.getfixturevalue("s3_bucket") + "/root"


def _tree(fs, root: str, folder: str) -> list[str]:
    paths = [join(root, folder, "_SUCCESS"), join(root, folder, "images", "00000", "0000000000.png")]
    for p in paths:
        fs.makedirs(p.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(p, b"data of " + folder.encode())
    return paths


def _files(fs, root: str) -> list[str]:
    fs.invalidate_cache(root)
    return sorted(p.removeprefix(fs._strip_protocol(root).rstrip("/") + "/") for p in fs.find(root))


def test_a_pattern_character_never_matches_another_folder(base):
    fs, root = get_fs(base)
    _tree(fs, root, "col1")
    _tree(fs, root, "col2")
    assert not exists(fs, join(root, "col[1]")) and not exists(fs, join(root, "col?"))
    assert files_under(fs, join(root, "col[1]")) == [] and list_dir(fs, join(root, "col[1]")) == []
    remove(fs, join(root, "col[1]"), "col[1]")  # nothing there: deletes nothing
    remove(fs, join(root, "col*"), "col*")
    assert cat_files(fs, [join(root, "col[1]", "_SUCCESS")])[join(root, "col[1]", "_SUCCESS")].__class__ is (
        FileNotFoundError
    )
    _tree(fs, root, "col[1]")
    remove(fs, join(root, "col[1]"), "col[1]")
    assert _files(fs, root) == [
        "col1/_SUCCESS",
        "col1/images/00000/0000000000.png",
        "col2/_SUCCESS",
        "col2/images/00000/0000000000.png",
    ]
    assert not exists(fs, join(root, "col[1]"))


def test_remove_takes_the_folder_not_a_sibling_with_the_same_prefix(base):
    fs, root = get_fs(base)
    _tree(fs, root, "out")
    _tree(fs, root, "out2")
    remove(fs, join(root, "out"), "out")
    assert _files(fs, root) == ["out2/_SUCCESS", "out2/images/00000/0000000000.png"]


@pytest.mark.parametrize("name", NAMES, ids=[f"name{i}" for i in range(len(NAMES))])
def test_names_round_trip(base, name):
    fs, root = get_fs(base)
    paths = _tree(fs, root, name)
    assert exists(fs, join(root, name)) and sorted(files_under(fs, join(root, name))) == sorted(
        fs._strip_protocol(p) for p in paths
    )
    got = cat_files(fs, paths)
    assert got == {p: b"data of " + name.encode() for p in paths}
    assert sorted(n.rsplit("/", 1)[-1] for n in list_dir(fs, join(root, name))) == ["_SUCCESS", "images"]
    check_writable(f"{base}/{name}")
    remove(fs, join(root, name), name)
    assert not exists(fs, join(root, name)) and _files(fs, root) == []


def _lock(folder) -> bool:
    """Make `folder`'s entries undeletable: chmod for a user, the immutable attribute for root."""
    if os.geteuid() != 0:
        os.chmod(folder, 0o500)
        return True
    return subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0


def _unlock(folder) -> None:
    if os.geteuid() != 0:
        os.chmod(folder, 0o700)
    else:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_file_that_cannot_be_deleted_is_a_storage_error_saying_what_is_left(tmp_path):
    fs, root = get_fs(str(tmp_path / "out"))
    _tree(fs, root, "images")
    locked = tmp_path / "out" / "images" / "images" / "00000"
    if not _lock(locked):
        pytest.skip("cannot make a folder undeletable here (no chattr)")
    try:
        with pytest.raises(StorageError) as err:
            remove(fs, join(root, "images"), "images/ for a test")
    finally:
        _unlock(locked)
    assert exists(fs, join(root, "images", "images", "00000", "0000000000.png"))
    left = f"{root}/images/_SUCCESS"  # rmtree stopped at the locked folder: both files are left
    assert str(err.value).startswith("deleting images/ for a test failed (PermissionError: ")
    assert str(err.value).endswith(
        f"; 2 file(s) are left there (first: {left}); "
        "check the location's permissions, then delete it by hand or re-run"
    )


def test_schedule_history_saves_at_a_path_with_pattern_characters(base):
    """The history's temp-then-rename used fsspec's generic mv, which globs: at `hist[1].json` on memory:// or
    S3 nothing was written (or a sibling `hist1.json` was copied in its place)."""
    from genart.cluster.history import History, RunRecord

    sibling = join(base, "hist1.json")
    fs, root = get_fs(base)
    fs.makedirs(root, exist_ok=True)
    fs.pipe_file(get_fs(sibling)[1], b'{"not": "mine"}')
    uri = join(base, "hist[1].json")
    h = History(uri, "nightly")
    h.runs["r1"] = RunRecord(run_id="r1", slot="2026-11-30T02:00:00+00:00")
    h.save()
    again = History(uri, "nightly").load()
    assert list(again.runs) == ["r1"]
    assert fs.cat_file(get_fs(sibling)[1]) == b'{"not": "mine"}'


def test_storage_options_are_not_mutated(monkeypatch):
    from genart.storage.fs import storage_options_for

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    options = {"client_kwargs": {"region_name": "eu-west-1"}}
    opts = storage_options_for("s3://b/x", options)
    assert opts["client_kwargs"] == {"region_name": "eu-west-1", "endpoint_url": "http://127.0.0.1:1"}
    assert options == {"client_kwargs": {"region_name": "eu-west-1"}}
