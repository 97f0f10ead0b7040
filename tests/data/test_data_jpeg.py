"""Decoding one image: colour conversion, shortest-side resize, center crop."""

import io

import numpy as np
import pytest
from PIL import Image

from lowbit.data.jpeg import JpegSource, decode_image, decode_members
from lowbit.errors import DataError


def _encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def test_greyscale_and_cmyk_become_rgb():
    grey = decode_image(_encode(Image.new("L", (20, 20), 77)), 20)
    assert grey.shape == (20, 20, 3) and (grey == 77).all()
    cmyk = decode_image(_encode(Image.new("CMYK", (8, 8)), "JPEG"), 8)
    assert cmyk.shape == (8, 8, 3)


def test_shortest_side_resize_then_center_crop():
    # 40x20 image: left quarter red, middle half green, right quarter blue
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :10, 0], arr[:, 10:30, 1], arr[:, 30:, 2] = 255, 255, 255
    out = decode_image(_encode(Image.fromarray(arr)), 10)  # resize to 20x10, crop the middle
    assert out.shape == (10, 10, 3)
    assert (out[:, 1:-1, 1] > 200).all() and (out[:, 1:-1, 0] < 50).all()


def test_exact_size_is_lossless_for_png():
    arr = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert np.array_equal(decode_image(_encode(Image.fromarray(arr)), 16), arr)


def test_large_jpeg_uses_draft_and_still_has_the_right_size():
    big = Image.fromarray(np.full((800, 1200, 3), 128, np.uint8))
    out = decode_image(_encode(big, "JPEG"), 100)
    assert out.shape == (100, 100, 3) and abs(int(out.mean()) - 128) <= 2


def test_corrupt_bytes_name_the_source():
    with pytest.raises(DataError, match="x.jpg.*corrupt"):
        decode_image(b"\xff\xd8 broken", 8, "x.jpg")


def test_dir_source_members_and_missing_member(tmp_path):
    for cls in ("b", "a"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        (tmp_path / "train" / cls / "1.png").write_bytes(_encode(Image.new("RGB", (4, 4))))
    (tmp_path / "train" / "a" / "notes.txt").write_text("skip me")
    source = JpegSource("dir", tmp_path)
    assert source.members("train") == {"a": ["train/a/1.png"], "b": ["train/b/1.png"]}
    assert decode_members(source, ["train/a/1.png"], 4).shape == (1, 4, 4, 3)
    with pytest.raises(DataError, match="cannot read train/a/2.png"):
        decode_members(source, ["train/a/2.png"], 4)


def test_bad_zip_is_a_data_error(tmp_path):
    bad = tmp_path / "x.zip"
    bad.write_bytes(b"PK not really")
    with pytest.raises(DataError, match="not a readable zip"):
        JpegSource("zip", bad).members("train")
