"""A video for Chromium's fake camera: a QR code held in front of the lens.

Chromium plays a Y4M file as the camera with ``--use-fake-device-for-media-stream
--use-file-for-fake-video-capture=FILE``. The frames show the QR image on a grey
background, moving a little from frame to frame as in a hand, so the scanner has to
find it in a real frame rather than a perfect bitmap.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

WIDTH, HEIGHT = 640, 480


def write_y4m(qr_png: bytes, path: Path, *, frames: int = 20, fps: int = 10) -> Path:
    """Write a YUV 4:2:0 Y4M video of the QR code in ``qr_png`` to ``path``."""
    code = Image.open(io.BytesIO(qr_png)).convert("L")
    side = min(WIDTH, HEIGHT) - 40
    code = code.resize((side, side), Image.Resampling.NEAREST)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        chroma = bytes([128]) * ((WIDTH // 2) * (HEIGHT // 2))
        for i in range(frames):
            frame = Image.new("L", (WIDTH, HEIGHT), 170)
            dx, dy = (i % 5) * 3, (i % 3) * 2  # a slightly unsteady hand
            frame.paste(code, ((WIDTH - side) // 2 + dx - 6, (HEIGHT - side) // 2 + dy - 2))
            out.write(b"FRAME\n")
            out.write(frame.tobytes())
            out.write(chroma)
            out.write(chroma)
    return path
