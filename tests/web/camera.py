"""A fake camera for Chromium: a Y4M video (what ``--use-file-for-fake-video-capture`` plays) showing a QR code, so
the installer page's real camera path (getUserMedia → frames → jsQR) reads the gateway's QR code."""

from __future__ import annotations

from pathlib import Path

import segno

WIDTH, HEIGHT = 640, 480


def qr_y4m(text: str, path: Path, *, frames: int = 10) -> Path:
    """Write ``frames`` identical 640×480 frames (4:2:0) showing ``text`` as a QR code, black on white."""
    qr = segno.make(text, error="m")
    matrix = [list(row) for row in qr.matrix]
    modules = len(matrix) + 8  # a 4-module quiet zone on each side
    scale = min(WIDTH, HEIGHT) * 9 // 10 // modules
    left = (WIDTH - modules * scale) // 2
    top = (HEIGHT - modules * scale) // 2
    y = bytearray(b"\xeb" * (WIDTH * HEIGHT))  # white (video range)
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if not dark:
                continue
            y0, x0 = top + (r + 4) * scale, left + (c + 4) * scale
            for yy in range(y0, y0 + scale):
                start = yy * WIDTH + x0
                y[start:start + scale] = b"\x10" * scale  # black
    chroma = b"\x80" * (WIDTH * HEIGHT // 4)
    frame = b"FRAME\n" + bytes(y) + chroma + chroma
    path.write_bytes(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode() + frame * frames)
    return path
