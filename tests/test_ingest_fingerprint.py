"""The exact fingerprint's definition, checked byte for byte, and the frame record."""

from __future__ import annotations

import pytest
from blake3 import blake3

from cctvchain.codec import DecodeError
from cctvchain.ingest.fingerprint import (
    FramePerceptual,
    FrameRecord,
    Picture,
    Plane,
    UnsupportedFormat,
    canonical_format,
    frame_digest,
    frame_digest_reference,
    picture_from_planes,
    pts_to_ms,
    raw_frame_size,
    split_raw_frame,
)


def tiny_yuv420p() -> Picture:
    # A 3x3 picture: chroma planes are ceil(3/2) = 2 samples square.
    return picture_from_planes("yuv420p", 3, 3, [bytes(range(9)), b"\x10" * 4, b"\x20" * 4])


def test_the_hash_is_blake3_as_its_specification_defines_it() -> None:
    # The specification's published test vectors (BLAKE3-specs, test_vectors.json, the
    # unkeyed 32-byte hash): an input of 0 bytes, and of 1 byte; a binding that hashed
    # anything else would change every anchored digest.
    assert blake3(b"").hexdigest() == (
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    )
    assert blake3(b"\x00").hexdigest() == (
        "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"
    )


def test_the_digest_is_blake3_of_the_documented_cbor_bytes() -> None:
    """Built by hand from the docstring's definition, independent of our encoder."""
    domain = b"cctvchain.frame.v2"
    encoded = (
        b"\x83"  # array(3)
        + bytes([0x60 + len(domain)])
        + domain
        + b"\x67yuv420p"  # text(7)
        + b"\x83"  # array(3): the planes
        + b"\x83\x03\x03\x49"  # [3, 3, bytes(9)]
        + bytes(range(9))
        + b"\x83\x02\x02\x44"  # [2, 2, bytes(4)]
        + b"\x10" * 4
        + b"\x83\x02\x02\x44"
        + b"\x20" * 4
    )
    picture = tiny_yuv420p()
    assert frame_digest(picture) == blake3(encoded).digest()
    assert frame_digest_reference(picture) == frame_digest(picture)


def test_padded_rows_hash_like_packed_rows_and_long_planes_use_long_heads() -> None:
    width, height, stride = 300, 4, 320  # 300x4 luma: 1200 bytes, a 2-byte CBOR head
    luma = bytes((x * 7 + y) % 256 for y in range(height) for x in range(width))
    padded = b"".join(luma[y * width : (y + 1) * width] + b"\xee" * 20 for y in range(height))
    chroma = bytes(150 * 2)
    packed = Picture("yuv420p", (Plane(300, 4, luma), Plane(150, 2, chroma), Plane(150, 2, chroma)))
    strided = Picture(
        "yuv420p",
        (Plane(300, 4, memoryview(padded), stride), Plane(150, 2, chroma), Plane(150, 2, chroma)),
    )
    assert frame_digest(strided) == frame_digest(packed) == frame_digest_reference(strided)
    assert strided.plane_bytes(0) == luma


def test_any_changed_sample_or_layout_changes_the_digest() -> None:
    base = tiny_yuv420p()
    digest = frame_digest(base)
    for plane in range(3):
        for offset in range(len(base.planes[plane].data)):
            data = bytearray(base.planes[plane].data)
            data[offset] ^= 1
            planes = list(base.planes)
            planes[plane] = Plane(planes[plane].width, planes[plane].height, bytes(data))
            assert frame_digest(Picture("yuv420p", tuple(planes))) != digest
    same_bytes_other_shape = picture_from_planes(
        "yuv444p", 3, 1, [bytes(range(3)), bytes(range(3, 6)), bytes(range(6, 9))]
    )
    assert frame_digest(same_bytes_other_shape) != digest


def test_full_range_aliases_name_the_same_layout_and_odd_formats_are_refused() -> None:
    assert canonical_format("yuvj420p") == "yuv420p"
    assert canonical_format("yuv420p10le") == "yuv420p10le"
    planes = [bytes(range(9)), b"\x10" * 4, b"\x20" * 4]
    assert frame_digest(picture_from_planes("yuvj420p", 3, 3, planes)) == frame_digest(
        tiny_yuv420p()
    )
    with pytest.raises(UnsupportedFormat):
        canonical_format("rgb24")
    with pytest.raises(ValueError, match="bytes"):
        Picture("yuv420p", (Plane(3, 3, bytes(8)), Plane(2, 2, bytes(4)), Plane(2, 2, bytes(4))))
    with pytest.raises(ValueError, match="plane 1"):
        Picture("yuv420p", (Plane(3, 3, bytes(9)), Plane(1, 2, bytes(2)), Plane(2, 2, bytes(4))))


def test_raw_frames_split_into_planes() -> None:
    assert raw_frame_size("yuv420p", 640, 360) == 640 * 360 * 3 // 2
    assert raw_frame_size("yuv420p10le", 4, 2) == (8 + 2 + 2) * 2
    raw = bytes(range(9)) + b"\x10" * 4 + b"\x20" * 4
    assert split_raw_frame("yuv420p", 3, 3, raw) == tiny_yuv420p()
    with pytest.raises(ValueError):
        split_raw_frame("yuv420p", 3, 3, raw + b"\x00")


def test_pts_convert_to_milliseconds_exactly_rounding_half_up() -> None:
    assert pts_to_ms(3600, 1, 90000) == 40
    assert pts_to_ms(45, 1, 90000) == 1  # 0.5 ms rounds up
    assert pts_to_ms(44, 1, 90000) == 0
    assert pts_to_ms(1001, 1, 30000) == 33  # 33.366...
    assert pts_to_ms(-3600, 1, 90000) == -40
    assert pts_to_ms(2**40, 1, 90000) == (2 * 2**40 * 1000 + 90000) // 180000
    with pytest.raises(ValueError):
        pts_to_ms(1, 0, 1)


def test_frame_records_round_trip_and_refuse_bad_fields() -> None:
    digest = frame_digest(tiny_yuv420p())
    plain = FrameRecord(0, 40, 1_767_225_600_040, digest, None)
    sampled = FrameRecord(
        1, 80, 1_767_225_600_080, digest, FramePerceptual(b"\x01" * 8, b"t" * 256)
    )
    for record in (plain, sampled):
        assert FrameRecord.decode(record.encode()) == record
    assert len(plain.encode()) <= 128  # ~11 MB per camera-hour off-chain at 25 fps
    with pytest.raises(ValueError):
        FrameRecord(0, 0, 0, b"short", None)
    with pytest.raises(ValueError):
        FramePerceptual(b"\x00" * 7, b"")
    wire = plain.to_wire()
    wire["digest"] = b"x" * 31
    with pytest.raises(DecodeError):
        FrameRecord.from_wire(wire)
