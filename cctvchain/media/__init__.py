"""Media shell: decoding video files and RTSP streams into canonical planes (PyAV)."""

from cctvchain.media.decode import (
    DecodedFrame,
    MediaError,
    VideoSource,
    decode_frames,
    is_stream_url,
    picture_of,
)

__all__ = [
    "DecodedFrame",
    "MediaError",
    "VideoSource",
    "decode_frames",
    "is_stream_url",
    "picture_of",
]
