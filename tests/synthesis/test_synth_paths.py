"""synthesize's output is literal and --overwrite deletes only once the job is known to run: `ds[1]` never
touches `ds1` (local, S3), and an overwrite the cluster cannot host leaves the dataset as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from genart.config.synthesize import SynthesizeConfig
from genart.errors import ClusterError
from genart.storage.fs import get_fs
from genart.storage.output import Output
from genart.synthesis import write
from genart.synthesis.runner import _clear, synthesize

FILES = [
    "_SUCCESS",
    "README.md",
    "samples.png",
    "data/train-00000-of-00001.parquet",
    "_candidates/round-00/x",
]


def _cfg(model: str, output: str, **kw) -> SynthesizeConfig:
    return SynthesizeConfig.model_validate(
        {"kind": "synthesize", "model": model, "output": output, "per_class": 2, "replicas": 1, **kw}
    )


def _dataset(base: str, name: str) -> None:
    fs, root = get_fs(base)
    for rel in FILES:
        fs.makedirs(f"{root}/{name}/{rel}".rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(f"{root}/{name}/{rel}", f"{name}/{rel}".encode())


def _listing(base: str) -> dict[str, str]:
    fs, root = get_fs(base)
    fs.invalidate_cache(root)
    return {
        p.removeprefix(root + "/"): hashlib.sha256(fs.cat_file(p)).hexdigest() for p in sorted(fs.find(root))
    }


@pytest.fixture(params=["local", "s3"])
def base(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "root")
    return request.getfixturevalue("s3_bucket") + "/root"


def test_clearing_ds_brackets_never_touches_ds1(base):
    _dataset(base, "ds1")
    _dataset(base, "ds[1]")
    before = _listing(base)
    _clear(Output.open(f"{base}/ds[1]"))
    assert _listing(base) == {k: v for k, v in before.items() if k.startswith("ds1/")}
    fs, root = get_fs(f"{base}/ds[1]")
    _dataset(base, "ds[1]")
    write.write_splits(
        fs, root, {}, write.dataset_schema([str(i) for i in range(10)], with_score=False), 10, iter(())
    )
    assert {k for k in _listing(base) if k.startswith("ds1/")} == {f"ds1/{f}" for f in FILES}


def test_overwrite_the_cluster_cannot_host_deletes_nothing(ray_local, tiny_bundle, tmp_path):
    out = tmp_path / "ds"
    _dataset(str(tmp_path), "ds")
    before = _listing(str(out))
    with pytest.raises(ClusterError, match=r"^synthesize: 64 x \(1 CPU, 0 GPU\) needs 64 CPU"):
        synthesize(_cfg(tiny_bundle, str(out), replicas=64), overwrite=True, progress=False)
    assert _listing(str(out)) == before and Path(out / "_SUCCESS").read_bytes() == b"ds/_SUCCESS"
