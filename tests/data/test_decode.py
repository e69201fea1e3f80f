"""genart.data.decode: images decoded as a viewer shows them, with exact pixel values (no Ray)."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from genart.data.decode import DecodeSpec, decode_batch, decode_image
from genart.errors import ImageSkipped
from tests.data.imgs import animated, enc, oriented, png, png16, solid, sticker

WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def dec(data: bytes, size: int, channels: int = 3, fit: str = "crop", background=WHITE, max_pixels=10**8):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Pillow warning escapes the decoder
        return decode_image(data, DecodeSpec(size, channels, fit, background, max_pixels))


def close(got, want, tol):
    return np.abs(np.asarray(got, int) - np.asarray(want, int)).max() <= tol


# orientation -> (colour of the top-left after rotation, of the bottom-right); stored: left red, right blue
ORIENTED = {6: ((255, 0, 0), (0, 0, 255)), 8: ((0, 0, 255), (255, 0, 0)), 3: ((0, 0, 255), (255, 0, 0))}


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_exif_orientation_is_applied(fmt, orientation):
    out, notes = dec(oriented(orientation, fmt), 16)
    top_left, bottom_right = ORIENTED[orientation]
    assert out.shape == (16, 16, 3) and "exif_rotated" in notes
    assert close(out[2, 2], top_left, 3) and close(out[13, 13], bottom_right, 3)
    if (
        orientation != 3
    ):  # rotated by 90 degrees: the stored rows are columns now, the centre crop is cut across
        assert close(out[2, 13], top_left, 3) and close(out[13, 2], bottom_right, 3)


def test_a_png_with_alpha_and_orientation_6_is_rotated_and_composited():
    a = np.zeros((16, 32, 4), np.uint8)
    a[:, :16] = (255, 0, 0, 255)
    a[:, 16:] = (0, 255, 0, 0)  # transparent, hiding green
    ex = Image.Exif()
    ex[0x0112] = 6
    out, notes = dec(enc(Image.fromarray(a, "RGBA"), "PNG", exif=ex), 16)
    assert set(notes) >= {"exif_rotated", "alpha"}
    assert out[0, 0].tolist() == [255, 0, 0] and out[15, 15].tolist() == [255, 255, 255]


RGBA_2X2 = np.array([[[255, 255, 0, 0], [255, 0, 0, 128]], [[0, 0, 255, 255], [0, 0, 0, 0]]], np.uint8)


def test_rgba_is_composited_onto_the_background():
    out, notes = dec(png(RGBA_2X2, "RGBA"), 2)
    assert notes == ("alpha",)
    assert out.reshape(-1, 3).tolist() == [[255, 255, 255], [255, 127, 127], [0, 0, 255], [255, 255, 255]]
    black, _ = dec(png(RGBA_2X2, "RGBA"), 2, background=BLACK)
    assert black.reshape(-1, 3).tolist() == [[0, 0, 0], [128, 0, 0], [0, 0, 255], [0, 0, 0]]
    grey, _ = dec(png(RGBA_2X2, "RGBA"), 2, channels=1)
    assert grey.shape == (2, 2, 1) and grey.reshape(-1).tolist() == [255, 165, 29, 255]


def test_a_sticker_shows_no_hidden_colour():
    out, _ = dec(sticker(8, hidden=(255, 255, 0)), 8)
    assert out[0, 0].tolist() == [255, 255, 255] and out[3, 3].tolist() == [255, 0, 0]
    assert not (out == (255, 255, 0)).all(-1).any()


def test_channels_4_keeps_alpha_exactly_and_sets_hidden_rgb_to_the_background():
    a = np.zeros((2, 3, 4), np.uint8)
    a[0] = [(255, 255, 0, 0), (10, 20, 30, 1), (40, 50, 60, 128)]
    a[1] = [(70, 80, 90, 254), (1, 2, 3, 255), (255, 0, 255, 0)]
    out, _ = dec(png(a, "RGBA"), 3, channels=4, fit="pad")
    assert out.shape == (3, 3, 4)
    assert out[0].tolist() == [[255, 255, 255, 0], [10, 20, 30, 1], [40, 50, 60, 128]]
    assert out[1].tolist() == [[70, 80, 90, 254], [1, 2, 3, 255], [255, 255, 255, 0]]
    assert out[2].tolist() == [[255, 255, 255, 0]] * 3  # the pad margin: background, transparent
    black, _ = dec(png(a, "RGBA"), 3, channels=4, fit="pad", background=BLACK)
    assert black[0, 0].tolist() == [0, 0, 0, 0] and black[0, 2].tolist() == [40, 50, 60, 128]


def test_la_grey_with_alpha():
    la = np.array([[[200, 0], [50, 255]], [[30, 255], [30, 0]]], np.uint8)
    out, notes = dec(png(la, "LA"), 2, channels=1)
    assert out.reshape(-1).tolist() == [255, 50, 30, 255] and "alpha" in notes


def _palette(transparency) -> bytes:
    pal = Image.new("P", (2, 2))
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    pal.putdata([0, 1, 2, 2])
    return enc(pal, "PNG", transparency=transparency)


def test_palette_with_an_integer_transparency_entry():
    out, notes = dec(_palette(0), 2)
    assert out.reshape(-1, 3).tolist() == [[255, 255, 255], [255, 0, 0], [0, 0, 255], [0, 0, 255]]
    assert set(notes) == {"palette", "alpha"}


def test_palette_with_transparency_as_bytes_gives_exact_rgba_and_no_warning():
    out, _ = dec(_palette(bytes([0, 128, 255])), 2, channels=4)  # dec() turns any warning into an error
    assert out.reshape(-1, 4).tolist() == [
        [255, 255, 255, 0],
        [255, 0, 0, 128],
        [0, 0, 255, 255],
        [0, 0, 255, 255],
    ]


def test_rgb_with_a_trns_colour_key():
    a = np.array([[[10, 20, 30], [200, 0, 0]], [[10, 20, 30], [0, 9, 0]]], np.uint8)
    data = enc(Image.fromarray(a), "PNG", transparency=(10, 20, 30))
    out, _ = dec(data, 2)
    assert out.reshape(-1, 3).tolist() == [[255, 255, 255], [200, 0, 0], [255, 255, 255], [0, 9, 0]]


def test_16_bit_grey_is_scaled_not_clipped():
    out, notes = dec(png(np.array([[0, 16448], [32896, 65535]], np.uint16)), 2, channels=1)
    assert out.reshape(-1).tolist() == [0, 64, 128, 255] and notes == ("16bit",)
    ramp = np.linspace(2000, 60000, 100).astype(np.uint16).reshape(10, 10)
    scan, _ = dec(png(ramp), 10, channels=1)
    assert (scan == 255).mean() == 0.0 and round(float(scan.mean()), 1) == 120.6


def test_16_bit_rgba_and_la_written_by_hand():
    rgba = np.array(
        [[[65535, 0, 0, 65535], [0, 32896, 0, 32896]], [[0, 0, 65535, 0], [0, 0, 0, 65535]]], np.uint16
    )
    out, _ = dec(png16(rgba, 6), 2, channels=4)
    assert out.reshape(-1, 4).tolist() == [
        [255, 0, 0, 255],
        [0, 128, 0, 128],
        [255, 255, 255, 0],
        [0, 0, 0, 255],
    ]
    la, _ = dec(png16(np.array([[[40000, 65535]]], np.uint16), 4), 1, channels=1)
    assert la.reshape(-1).tolist() == [156]


def test_32_bit_integer_and_float_tiffs():
    i32 = Image.fromarray(np.array([[0, 1000], [65535, 0]], np.int32), "I")
    out, notes = dec(enc(i32, "TIFF"), 2, channels=1)
    assert out.reshape(-1).tolist() == [0, 4, 255, 0] and notes == ("16bit",)
    f = Image.fromarray(np.array([[0.0, 0.5], [1.0, 0.0]], np.float32), "F")
    out, notes = dec(enc(f, "TIFF"), 2, channels=1)
    assert out.reshape(-1).tolist() == [0, 128, 255, 0] and notes == ("float",)


def test_cmyk_jpeg():
    out, notes = dec(enc(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=100), 16)
    assert close(out[8, 8], (255, 0, 0), 2) and notes == ("cmyk",)
    out, _ = dec(enc(Image.new("CMYK", (16, 16), (0, 0, 0, 128)), "JPEG", quality=100), 16)
    assert close(out[8, 8], (127, 127, 127), 2)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animations_take_their_first_frame(fmt):
    out, notes = dec(animated(fmt), 8)
    assert out[4, 4].tolist() == [255, 0, 0] and "animated_first_frame" in notes


def test_decompression_bombs_are_skipped_without_touching_pillows_global(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for side in (40, 50):  # 1600 px: Pillow only warns; 2500 px: Pillow raises
        with pytest.raises(ImageSkipped) as err:
            dec(solid(0, side, "L"), 8)
        assert err.value.reason == "too_large"
    with pytest.raises(ImageSkipped, match="too_large: 16x16"):
        dec(solid(0, 16, "L"), 8, max_pixels=255)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_are_corrupt(fmt):
    rng = np.random.default_rng(0)
    data = enc(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), fmt)
    with pytest.raises(ImageSkipped) as err:
        dec(data[: int(len(data) * 0.8)], 8)
    assert err.value.reason == "corrupt"


def test_random_bytes_are_not_an_image():
    with pytest.raises(ImageSkipped) as err:
        dec(np.random.default_rng(1).bytes(500), 8)
    assert err.value.reason == "not_an_image"


def test_crop_drops_the_sides_and_pad_keeps_them_on_the_background():
    a = np.zeros((4, 8, 3), np.uint8)
    a[:, :2], a[:, 2:6], a[:, 6:] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    crop, _ = dec(png(a), 4)
    assert (crop == (0, 255, 0)).all()
    pad, _ = dec(png(a), 8, fit="pad")
    assert (pad[:2] == 255).all() and (pad[6:] == 255).all()
    assert (
        pad[3, 0].tolist() == [255, 0, 0]
        and pad[3, 4].tolist() == [0, 255, 0]
        and pad[3, 7].tolist() == [0, 0, 255]
    )
    on_black, _ = dec(png(a), 8, fit="pad", background=BLACK)
    assert (on_black[:2] == 0).all() and on_black[3, 4].tolist() == [0, 255, 0]


def test_resizing_rgba_does_not_bleed_hidden_colour():
    a = np.array([[[255, 0, 0, 255], [0, 255, 0, 0]]] * 2, np.uint8)
    out, _ = dec(png(a, "RGBA"), 1, channels=4)
    assert out.reshape(-1).tolist() == [255, 0, 0, 128]
    flat, _ = dec(png(a, "RGBA"), 1)
    assert flat.reshape(-1).tolist() == [255, 127, 127]


def test_decode_batch_turns_problems_into_data():
    batch = {
        "data": [sticker(4), b"junk", None],
        "reason": ["", "", "missing_file"],
        "label": [2, 0, 1],
        "name": ["a.png", "b.png", "c.png"],
    }
    out = decode_batch(batch, DecodeSpec(4, 3))
    assert out["ok"].tolist() == [True, False, False]
    assert out["reason"].tolist() == ["", "not_an_image", "missing_file"]
    assert out["notes"].tolist() == ["alpha", "", ""] and out["label"].dtype == np.int64
    assert out["image"].shape == (3, 4, 4, 3) and out["image"][0, 0, 0].tolist() == [255, 255, 255]


def test_a_large_jpeg_decodes_at_a_reduced_scale_with_the_same_picture():
    a = np.zeros((1500, 2000, 3), np.uint8)
    a[:, :1000] = (255, 0, 0)
    a[:, 1000:] = (0, 0, 255)
    data = enc(Image.fromarray(a), "JPEG", quality=95)
    img = Image.open(io.BytesIO(data))
    img.draft(img.mode, (32, 32))
    assert img.size == (250, 188)  # what the decoder asks for at image_size 16: 1/8 scale, not 2000x1500
    out, _ = dec(data, 16)
    assert close(out[8, 2], (255, 0, 0), 3) and close(out[8, 13], (0, 0, 255), 3)


def test_an_orientation_outside_1_to_8_is_ignored_and_not_reported():
    b = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 9
    Image.new("RGB", (8, 8), (200, 10, 10)).save(b, "PNG", exif=exif)
    img, notes = dec(b.getvalue(), 8)
    assert notes == () and img[0, 0].tolist() == [200, 10, 10]


def test_a_lab_tiff_is_converted_to_rgb():
    b = io.BytesIO()
    Image.new("LAB", (4, 4), (128, 128, 128)).save(b, "TIFF")  # L* 50, a* 0, b* 0: mid grey
    img, _ = dec(b.getvalue(), 4)
    assert img[0, 0].tolist() == [119, 119, 119]


def test_a_mode_pillow_cannot_convert_is_skipped_as_unsupported(monkeypatch):
    real_convert = Image.Image.convert

    def convert(self, mode=None, *args, **kwargs):  # fault injection: Pillow's error for La -> L
        if self.mode == "YCbCr":
            raise ValueError(f"conversion from {self.mode} to {mode} not supported")
        return real_convert(self, mode, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "convert", convert)
    b = io.BytesIO()
    Image.new("YCbCr", (4, 4), (128, 128, 128)).save(b, "TIFF")
    with pytest.raises(ImageSkipped) as err:
        dec(b.getvalue(), 4)
    assert err.value.reason == "unsupported" and "YCbCr: conversion from YCbCr to RGB not supported" in str(
        err.value
    )
    out = decode_batch(
        {"data": [b.getvalue()], "reason": [""], "label": [0], "name": ["odd.tif"]}, DecodeSpec(4, 3)
    )
    assert out["ok"].tolist() == [False] and out["reason"].tolist() == ["unsupported"]
