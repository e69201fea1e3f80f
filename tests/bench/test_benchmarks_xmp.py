"""`genart bench generate`'s XMP table (bench_xmp) on a tiny bundle: it runs, and the bytes it reports are the
packets' exactly (the timings are not asserted: the machine is shared)."""

import numpy as np

from genart.bench.generate import bench_xmp
from genart.ids import item_seeds
from genart.market.xmp import JOB_ID_LIKE, xmp_packet
from tests.conftest import make_tiny_bundle


def test_bench_xmp_reports_each_format_and_the_bytes_the_packet_adds(tmp_path, capsys):
    bundle = str(tmp_path / "bundle")
    make_tiny_bundle(bundle)
    r = bench_xmp(bundle, n=8, rounds=1)
    assert list(r) == ["png", "webp", "jpeg"]
    packets = [
        len(xmp_packet("0" * 64, JOB_ID_LIKE, i, s)) for i, s in enumerate(item_seeds(0, np.arange(8)))
    ]
    container = {"png": 12 + 22, "jpeg": 4 + 29}  # iTXt chunk header + keyword; APP1 marker, length, id
    for fmt in ("png", "jpeg"):
        assert r[fmt]["bytes_added"] == np.mean(packets) + container[fmt]
    assert all(v["on"] > 0 and v["off"] > 0 and v["stamp_us"] > 0 for v in r.values())
    assert "XMP disclosure (provenance.xmp): 8 images" in capsys.readouterr().out
