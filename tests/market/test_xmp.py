"""The XMP disclosure (genart/market/xmp.py) read back by independent readers: Pillow's getxmp (defusedxml),
exiftool where it is installed, and a raw parse of each format's container."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess

import numpy as np
import pytest
from PIL import Image

from genart.images import encode
from genart.market.xmp import (
    TRAINED_ALGORITHMIC_MEDIA,
    Provenance,
    add_xmp,
    disclosure,
    read_xmp,
    xmp_packet,
)

MODEL_ID = "0123456789abcdef" * 4
JOB_ID = "20261207T101500Z-1a2b3c4d"
CASES = [(fmt, c) for fmt in ("png", "webp", "jpeg") for c in (1, 3, 4) if not (fmt == "jpeg" and c == 4)]


def _image(channels: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(channels).integers(0, 256, (size, size, channels), dtype=np.uint8)


def _stamped(fmt: str, channels: int, item_id: int = 41, seed: int = 2**62 + 5) -> tuple[bytes, bytes]:
    raw = encode(_image(channels), fmt, 90)
    return raw, Provenance(MODEL_ID, JOB_ID).stamp(raw, fmt, item_id, seed)


@pytest.mark.parametrize("fmt,channels", CASES)
def test_pillow_getxmp_reads_the_disclosure_and_the_pixels_are_unchanged(fmt, channels):
    raw, stamped = _stamped(fmt, channels)
    with Image.open(io.BytesIO(stamped)) as im, Image.open(io.BytesIO(raw)) as plain:
        assert (im.format, im.mode, im.size) == (plain.format, plain.mode, plain.size)
        assert np.array_equal(np.asarray(im), np.asarray(plain))
        desc = im.getxmp()["xmpmeta"]["RDF"]["Description"]
    assert desc["DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert (desc["model_id"], desc["job_id"], desc["id"], desc["seed"]) == (
        MODEL_ID,
        JOB_ID,
        "41",
        str(2**62 + 5),
    )
    assert disclosure(stamped) == {
        "DigitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
        "model_id": MODEL_ID,
        "job_id": JOB_ID,
        "id": "41",
        "seed": str(2**62 + 5),
    }
    assert disclosure(raw) is None and read_xmp(raw) is None


@pytest.mark.parametrize("fmt,channels", CASES)
def test_stamped_bytes_are_deterministic_and_only_add_the_packet(fmt, channels):
    raw, a = _stamped(fmt, channels)
    _, b = _stamped(fmt, channels)
    assert a == b and hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest()
    assert _stamped(fmt, channels, item_id=42)[1] != a  # the id is in the packet
    packet = xmp_packet(MODEL_ID, JOB_ID, 41, 2**62 + 5)
    assert read_xmp(a) == packet
    # nothing but the packet and its container: iTXt chunk (12 + 22), APP1 (4 + 29), XMP chunk (8) + VP8X (18)
    extra = {"png": 12 + 22, "jpeg": 4 + 29, "webp": 8 + (0 if channels == 4 else 18)}[fmt]
    assert len(a) - len(raw) == len(packet) + extra + (len(packet) & 1 if fmt == "webp" else 0)


def test_png_chunk_follows_ihdr_with_a_valid_crc():
    raw, stamped = _stamped("png", 3)
    length, kind = struct.unpack(">I4s", stamped[33:41])
    body = stamped[41 : 41 + length]
    assert kind == b"iTXt" and body.startswith(b"XML:com.adobe.xmp\x00\x00\x00\x00\x00<?xpacket")
    assert struct.unpack(">I", stamped[41 + length : 45 + length])[0] == __import__("zlib").crc32(kind + body)
    with Image.open(io.BytesIO(stamped)) as im:
        im.verify()  # every chunk's CRC


def test_jpeg_app1_follows_the_jfif_app0():
    _, stamped = _stamped("jpeg", 3)
    assert stamped[2:4] == b"\xff\xe0" and stamped[6:11] == b"JFIF\x00"
    app0_end = 4 + struct.unpack(">H", stamped[4:6])[0]
    assert stamped[app0_end : app0_end + 2] == b"\xff\xe1"
    assert stamped[app0_end + 4 : app0_end + 33] == b"http://ns.adobe.com/xap/1.0/\x00"


@pytest.mark.parametrize("channels,alpha_flag", [(1, 0), (3, 0), (4, 0x10)])
def test_webp_becomes_extended_with_the_xmp_flag(channels, alpha_flag):
    _, stamped = _stamped("webp", channels)
    assert stamped[:4] == b"RIFF" and struct.unpack("<I", stamped[4:8])[0] == len(stamped) - 8
    assert stamped[12:16] == b"VP8X" and stamped[20] == 0x04 | alpha_flag
    width = int.from_bytes(stamped[24:27], "little") + 1
    height = int.from_bytes(stamped[27:30], "little") + 1
    assert (width, height) == (32, 32)
    assert b"XMP " in stamped[-len(read_xmp(stamped)) - 9 :]


def test_lossless_webp_alpha_is_kept():
    """A simple VP8L file (lossless) gains a VP8X header whose alpha flag follows the bitstream's."""
    buf = io.BytesIO()
    Image.fromarray(_image(4), "RGBA").save(buf, format="WEBP", lossless=True)
    raw = buf.getvalue()
    stamped = add_xmp(raw, "webp", xmp_packet(MODEL_ID, JOB_ID, 0, 0))
    if raw[12:16] == b"VP8L":
        assert stamped[20] == 0x04 | 0x10
    with Image.open(io.BytesIO(stamped)) as im, Image.open(io.BytesIO(raw)) as plain:
        assert im.mode == "RGBA" and np.array_equal(np.asarray(im), np.asarray(plain))
        assert im.getxmp()["xmpmeta"]["RDF"]["Description"]["job_id"] == JOB_ID


def test_values_are_escaped_in_the_packet():
    odd = "job \"<&>' ü %d %%"  # XML escapes, and the template's own % placeholders
    stamped = Provenance(MODEL_ID, odd).stamp(encode(_image(1)), "png", 0, 0)
    assert disclosure(stamped)["job_id"] == odd


@pytest.mark.parametrize(
    "data,fmt,message",
    [
        (b"GIF89a", "gif", "image format 'gif' is not one of png, webp, jpeg"),
        (b"not an image", "png", "not a PNG file (no signature and IHDR chunk at the start)"),
        (b"not an image", "jpeg", "not a JPEG file (no SOI marker at the start)"),
        (b"not an image", "webp", "not a WebP file (no RIFF WEBP header)"),
    ],
)
def test_bad_input_is_a_clear_error(data, fmt, message):
    with pytest.raises(ValueError) as err:
        add_xmp(data, fmt, b"<x/>")
    assert str(err.value) == message


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_a_second_packet_is_refused(fmt):
    _, stamped = _stamped(fmt, 3)
    name = {"png": "PNG", "jpeg": "JPEG", "webp": "WebP"}[fmt]
    with pytest.raises(ValueError, match=f"^this {name} already holds an XMP packet$"):
        add_xmp(stamped, fmt, b"<x/>")


def test_a_packet_too_big_for_one_jpeg_segment_is_refused():
    with pytest.raises(ValueError, match="^XMP packet of 70000 bytes does not fit one JPEG APP1 segment$"):
        add_xmp(encode(_image(3), "jpeg"), "jpeg", b" " * 70000)


def _exiftool() -> str | None:
    return os.environ.get("GENART_EXIFTOOL") or shutil.which("exiftool")


@pytest.mark.skipif(_exiftool() is None, reason="exiftool is not installed (set GENART_EXIFTOOL or PATH)")
@pytest.mark.parametrize("fmt,channels", CASES)
def test_exiftool_reads_the_digital_source_type(fmt, channels, tmp_path):
    _, stamped = _stamped(fmt, channels)
    path = tmp_path / f"item.{fmt}"
    path.write_bytes(stamped)
    out = subprocess.run(
        [_exiftool(), "-json", "-XMP:all", "-validate", "-warning", "-a", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (tags,) = json.loads(out.stdout)
    assert tags["DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert (str(tags["Model_id"]), str(tags["Job_id"]), str(tags["Id"])) == (MODEL_ID, JOB_ID, "41")
    assert str(tags["Seed"]) == str(2**62 + 5)
    assert "Warning" not in tags, tags.get("Warning")
