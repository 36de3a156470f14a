"""report.html as a browser draws it: headless Debian chromium renders it to a PNG, which must
show the page and its chart (not a blank or an error page).

Needs the ``chromium`` Debian package (``apt-get install chromium``); skipped, saying so, where
it is not installed. The PNG is decoded here with zlib (no imaging library needed).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

WIDTH, HEIGHT = 1200, 1600


def find_chromium() -> str | None:
    """The chromium binary, if installed."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, rows of raw pixels) of an 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def colour_near(pixel: tuple[int, ...], hex_colour: str, tolerance: int = 40) -> bool:
    """Whether an RGB pixel is close to ``#rrggbb``."""
    target = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    return all(abs(p - t) <= tolerance for p, t in zip(pixel[:3], target, strict=True))


@pytest.fixture(scope="module")
def png(tmp_path_factory: pytest.TempPathFactory, session: dict[str, Any]) -> Path:
    """report.html of a whole session, rendered by headless chromium."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed: apt-get install chromium (Debian's package)")
    tmp = tmp_path_factory.mktemp("render")
    out = session["out"]
    shot = tmp / "report.png"
    env = dict(os.environ, HOME=str(tmp))  # chromium writes its profile under HOME
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp / 'profile'}",
            f"--screenshot={shot}",
            f"--window-size={WIDTH},{HEIGHT}",
            (out / "report.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
        env=env,
    )
    keep = os.environ.get("ROOMD_KEEP_RENDER")
    if keep:  # for a human to look at: ROOMD_KEEP_RENDER=/tmp/report.png pytest …
        shutil.copy(shot, keep)
    return shot


def test_rendered_report_is_not_blank_and_shows_the_chart(png: Path) -> None:
    width, height, bpp, rows = decode_png(png.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    # Brightness variance over a grid of pixels: a blank page has none.
    grid = [row[x * bpp : x * bpp + 3] for row in rows[::8] for x in range(0, width, 8)]
    light = [sum(p) / 3 for p in grid]
    mean = sum(light) / len(light)
    variance = sum((v - mean) ** 2 for v in light) / len(light)
    assert variance > 200, f"the page looks blank (variance {variance:.0f})"
    assert len({bytes(p) for p in grid}) > 20, "too few colours for a report with a chart"
    # The chart's own colours are on the page: SpO2 line, heart-rate line, infusion band.
    pixels = [tuple(row[x * bpp : x * bpp + 3]) for row in rows[150:700] for x in range(0, width)]
    for name, colour in (("SpO2", "#1565c0"), ("heart rate", "#2e7d32"), ("infusion", "#fde7e7")):
        count = sum(colour_near(p, colour, 12) for p in pixels)
        assert count > 100, f"no {name} colour ({colour}) drawn in the chart area"
