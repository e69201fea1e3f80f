"""The AI disclosure every image genart writes carries: an XMP packet put into already-encoded file bytes.

The packet names the IPTC Digital Source Type `trainedAlgorithmicMedia` (`Iptc4xmpExt:DigitalSourceType`, what
markets, platforms and EU AI Act Art. 50(2) marking look for) and genart's `model_id`, `job_id`, `id` and `seed`
in genart's own namespace (GENART_NS). It is inserted where each format's readers look for it, and nothing else
in the file changes (the pixels' bytes are those `images.encode` wrote):

- PNG: an uncompressed iTXt chunk with keyword `XML:com.adobe.xmp`, right after IHDR;
- JPEG: an APP1 segment `http://ns.adobe.com/xap/1.0/\\0` + packet, after SOI and the JFIF APP0;
- WebP: an `XMP ` chunk at the end, the file made extended (VP8X, XMP flag; the alpha flag as before).

No time, randomness or version goes in, so the same (bytes, model_id, job_id, id, seed) always give the same
stamped bytes and sha256. Pillow's `Image.getxmp()` (with defusedxml) and exiftool read the result; `read_xmp`
and `disclosure` are this module's own raw-bytes readers (used by tests and `genart verify`).
"""

from __future__ import annotations

import functools
import struct
import zlib
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
IPTC_EXT_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
GENART_NS = "https://github.com/genart/genart/ns/xmp/1.0/"
XMP_KEYWORD = b"XML:com.adobe.xmp"  # PNG iTXt keyword
JPEG_XMP_ID = b"http://ns.adobe.com/xap/1.0/\x00"  # JPEG APP1 identifier
MAX_JPEG_SEGMENT = 65533  # payload bytes one APP1 segment holds (its 16-bit length counts itself)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JOB_ID_LIKE = "20260101T000000Z-00000000"  # as long as generate's job ids: for size estimates
VP8X_XMP, VP8X_ALPHA = 0x04, 0x10  # VP8X flag bits


def xmp_packet(model_id: str, job_id: str, item_id: int, seed: int) -> bytes:
    """The UTF-8 XMP packet for one item: DigitalSourceType trainedAlgorithmicMedia and genart:model_id,
    genart:job_id, genart:id, genart:seed (decimal integers). Deterministic: the same arguments, the same bytes."""
    return (_template(model_id, job_id) % (int(item_id), int(seed))).encode("utf-8")


@functools.lru_cache(maxsize=64)
def _template(model_id: str, job_id: str) -> str:
    """The packet with `%d` where the id and seed go: a job's items differ only there (built once per job)."""
    fixed = {"model_id": quoteattr(model_id), "job_id": quoteattr(job_id)}
    attrs = "".join(f"\n    genart:{k}={v.replace('%', '%%')}" for k, v in fixed.items())
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        f"    xmlns:Iptc4xmpExt={quoteattr(IPTC_EXT_NS)}\n"
        f"    xmlns:genart={quoteattr(GENART_NS)}\n"
        f"    Iptc4xmpExt:DigitalSourceType={quoteattr(TRAINED_ALGORITHMIC_MEDIA)}{attrs}\n"
        '    genart:id="%d"\n'
        '    genart:seed="%d"/>\n'
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="r"?>'
    )


def add_xmp(data: bytes, fmt: str, packet: bytes) -> bytes:
    """`data` (the file bytes `images.encode` made, format `fmt`: png, jpeg or webp) with the XMP `packet` put
    where that format keeps it. Raises ValueError for another format, bytes that are not that format, a file
    that already holds XMP, or (JPEG) a packet over MAX_JPEG_SEGMENT bytes."""
    if fmt == "png":
        return _png(data, packet)
    if fmt == "jpeg":
        return _jpeg(data, packet)
    if fmt == "webp":
        return _webp(data, packet)
    raise ValueError(f"image format {fmt!r} is not one of png, webp, jpeg")


@dataclass(frozen=True)
class Provenance:
    """What one job stamps into each of its images: its bundle's model_id and its job_id."""

    model_id: str
    job_id: str

    def stamp(self, data: bytes, fmt: str, item_id: int, seed: int) -> bytes:
        """`data` with this job's XMP packet for item `item_id` drawn from `seed` (see add_xmp)."""
        return add_xmp(data, fmt, xmp_packet(self.model_id, self.job_id, item_id, seed))

    def stamp_all(self, blobs: list[bytes], fmt: str, ids, seeds) -> list[bytes]:
        """`stamp` over parallel lists: N file bytes, N ids, N seeds -> N stamped file bytes."""
        return [self.stamp(b, fmt, int(i), int(s)) for b, i, s in zip(blobs, ids, seeds, strict=True)]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(data: bytes, packet: bytes) -> bytes:
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file (no signature and IHDR chunk at the start)")
    if XMP_KEYWORD + b"\x00" in data:
        raise ValueError("this PNG already holds an XMP packet")
    end = 8 + 12 + struct.unpack(">I", data[8:12])[0]  # after IHDR: length, type, body, crc
    # iTXt: keyword, NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL
    itxt = _chunk(b"iTXt", XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + packet)
    return data[:end] + itxt + data[end:]


def _jpeg(data: bytes, packet: bytes) -> bytes:
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file (no SOI marker at the start)")
    payload = JPEG_XMP_ID + packet
    if len(payload) > MAX_JPEG_SEGMENT:
        raise ValueError(f"XMP packet of {len(packet)} bytes does not fit one JPEG APP1 segment")
    pos = 2
    while data[pos : pos + 2] in (b"\xff\xe0", b"\xff\xe1"):  # after JFIF APP0 (and Exif APP1), if any
        seg_len = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if data[pos + 4 : pos + 4 + len(JPEG_XMP_ID)] == JPEG_XMP_ID:
            raise ValueError("this JPEG already holds an XMP packet")
        pos += 2 + seg_len
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:pos] + app1 + data[pos:]


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP file (no RIFF WEBP header)")
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunks.append((kind, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return chunks


def _riff(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(k + struct.pack("<I", len(c)) + c + (b"\x00" if len(c) & 1 else b"") for k, c in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def _webp(data: bytes, packet: bytes) -> bytes:
    chunks = _riff_chunks(data)
    if not chunks:
        raise ValueError("a WebP file without chunks")
    kind, body = chunks[0]
    if any(k == b"XMP " for k, _ in chunks):
        raise ValueError("this WebP already holds an XMP packet")
    if kind == b"VP8X":
        vp8x = bytes([body[0] | VP8X_XMP]) + body[1:]
    elif kind in (b"VP8 ", b"VP8L"):
        width, height, alpha = _webp_frame(kind, body)
        flags = VP8X_XMP | (VP8X_ALPHA if alpha else 0)
        dims = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        vp8x, chunks = bytes([flags, 0, 0, 0]) + dims, [(b"VP8X", b"")] + chunks
    else:
        raise ValueError(f"a WebP file whose first chunk is {kind!r}")
    return _riff([(b"VP8X", vp8x)] + chunks[1:] + [(b"XMP ", packet)])


def _webp_frame(kind: bytes, body: bytes) -> tuple[int, int, bool]:
    """(width, height, has alpha) from a simple WebP's VP8 / VP8L bitstream header."""
    if kind == b"VP8 ":  # 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height
        w, h = struct.unpack("<HH", body[6:10])
        return w & 0x3FFF, h & 0x3FFF, False
    bits = struct.unpack("<I", body[1:5])[0]  # after the 0x2f signature: 14+14 bits, alpha_is_used
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)


def read_xmp(data: bytes) -> bytes | None:
    """The XMP packet in PNG, JPEG or WebP file bytes (found the way add_xmp puts it; format told by the
    magic bytes), or None when there is none or the bytes are none of those formats."""
    if data[:8] == PNG_SIGNATURE:
        start = data.find(b"iTXt" + XMP_KEYWORD + b"\x00")
        if start < 0:
            return None
        length = struct.unpack(">I", data[start - 4 : start])[0]
        body = data[start + 4 : start + 4 + length]
        return body.split(b"\x00", 5)[5] if body[len(XMP_KEYWORD) + 1] == 0 else None
    if data[:2] == b"\xff\xd8":
        pos = 2
        while data[pos : pos + 1] == b"\xff" and data[pos + 1 : pos + 2] not in (b"\xda", b"\xd9"):
            seg_len = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
            seg = data[pos + 4 : pos + 2 + seg_len]
            if data[pos + 1] == 0xE1 and seg.startswith(JPEG_XMP_ID):
                return seg[len(JPEG_XMP_ID) :]
            pos += 2 + seg_len
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return next((c for k, c in _riff_chunks(data) if k == b"XMP "), None)
    return None


def disclosure(data: bytes) -> dict[str, str] | None:
    """{"DigitalSourceType", "model_id", "job_id", "id", "seed"} (strings) from the XMP packet in `data`, or
    None when it holds none or the packet names no DigitalSourceType. Parsed with defusedxml (no entities)."""
    from defusedxml import ElementTree

    packet = read_xmp(data)
    if packet is None:
        return None
    root = ElementTree.fromstring(packet)
    rdf = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
    for desc in root.iter(f"{rdf}Description"):
        source = desc.get(f"{{{IPTC_EXT_NS}}}DigitalSourceType")
        if source is not None:
            out = {"DigitalSourceType": source}
            out.update({k: desc.get(f"{{{GENART_NS}}}{k}") for k in ("model_id", "job_id", "id", "seed")})
            return out
    return None
