"""Output: a location resolved once (filesystem, root, redacted name). No Ray."""

from __future__ import annotations

import dataclasses

import fsspec
import pytest

from genart.errors import StorageError
from genart.storage.output import Output


def test_open_resolves_the_filesystem_root_and_a_redacted_name(tmp_path):
    out = Output.open(f"file://{tmp_path}/out/")
    assert (out.root, out.path("metadata", "part-00000.parquet")) == (
        f"{tmp_path}/out",
        f"{tmp_path}/out/metadata/part-00000.parquet",
    )
    assert isinstance(out.fs, fsspec.implementations.local.LocalFileSystem)
    assert out.name == f"file://{tmp_path}/out/"


def test_the_name_never_holds_credentials():
    out = Output.open("memory://user:secret@bucket/out?token=abc")
    assert "secret" not in out.name and "abc" not in out.name
    assert out.name == "memory://bucket/out?token=***"
    assert "secret" not in repr(out) and "abc" not in repr(out)  # a logged Output leaks nothing either


def test_at_wraps_an_open_filesystem(tmp_path):
    fs = fsspec.filesystem("file")
    out = Output.at(fs, f"{tmp_path}/x/")
    assert (out.fs, out.root, out.uri, out.name) == (fs, f"{tmp_path}/x", f"{tmp_path}/x", f"{tmp_path}/x")


def test_an_unknown_protocol_is_a_storage_error():
    with pytest.raises(StorageError, match=r"^nosuch://b/out: cannot open this location \("):
        Output.open("nosuch://b/out")


def test_check_writable_names_the_output(tmp_path):
    (tmp_path / "file").write_text("x")
    out = Output.open(f"{tmp_path}/file/out")
    with pytest.raises(StorageError) as err:
        out.check_writable()
    assert str(err.value).startswith(f"output {tmp_path}/file/out is not writable (")
    Output.open(f"{tmp_path}/ok").check_writable()
    assert list((tmp_path / "ok").iterdir()) == []  # the probe is removed


def test_output_is_frozen(tmp_path):
    with pytest.raises(dataclasses.FrozenInstanceError):
        Output.open(str(tmp_path)).root = "/elsewhere"
