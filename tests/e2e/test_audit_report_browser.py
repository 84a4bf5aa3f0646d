"""The HTML report in a real browser: headless Chromium (from Debian) renders it, the charts are in the DOM
and are drawn, and a screenshot is kept under ``artifacts/`` for people to look at."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from dataclasses import replace
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
from steward.domain.audit import VM_TYPE, AuditResult, ProtectableResource, audit  # noqa: E402
from steward.report import render_html  # noqa: E402
from steward.report.charts import GOOD, SEVERITY_COLOURS  # noqa: E402
from tests.unit.audit.audit_estate_builders import NOW, SUB_A, rid, rules  # noqa: E402
from tests.unit.audit.test_audit_result import messy_estate  # noqa: E402

ARTIFACTS = REPO / "artifacts" / "audit"
CHARTS = {"coverage-by-subscription", "coverage-by-region", "coverage-by-type", "findings-by-severity", "trend"}
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "ensure-chromium.sh")], capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, f"ensure-chromium.sh failed: {done.stderr[-2000:]}"
    return done.stdout.strip().splitlines()[-1]


def report() -> AuditResult:
    """Five daily runs of an estate with findings, one resource named with markup."""
    estate = messy_estate()
    evil = ProtectableResource(
        rid(SUB_A, "rg-app", VM_TYPE, "<script>document.title='owned'</script>"),
        VM_TYPE,
        "westeurope",
        {"note": "<img src=x onerror=alert(1)>"},
    )
    estate = replace(estate, resources=(*estate.resources, evil))
    result: AuditResult | None = None
    for day in range(5):
        result = audit(estate, rules(), NOW + timedelta(days=day), previous=result)
    assert result is not None
    return result


def run_browser(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title" and not any(t == "svg" for t, _ in self.tags[:-1])

    def handle_data(self, data: str) -> None:
        if self._in_title and not self.title:
            self.title = data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


def png_pixels(path: Path) -> tuple[int, int, set[tuple[int, int, int]]]:
    """Decode an 8-bit RGB/RGBA PNG (what Chromium writes) into its set of colours."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    height = depth = colour = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert depth == 8 and colour in {2, 6}, f"unexpected PNG format depth={depth} colour={colour}"
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    previous = bytearray(stride)
    colours: set[tuple[int, int, int]] = set()
    for y in range(height):
        filt = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            corner = previous[i - bpp] if i >= bpp else 0
            if filt == 1:
                line[i] = (line[i] + left) & 0xFF
            elif filt == 2:
                line[i] = (line[i] + up) & 0xFF
            elif filt == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif filt == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + pred) & 0xFF
        colours.update(tuple(line[i : i + 3]) for i in range(0, stride, bpp))  # type: ignore[misc]
        previous = line
    return width, height, colours


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


@pytest.mark.slow
def test_the_report_renders_in_headless_chromium_with_its_charts(chromium: str, tmp_path: Path) -> None:
    result = report()
    page = tmp_path / "audit.html"
    page.write_text(render_html(result), encoding="utf-8")

    dumped = run_browser(chromium, tmp_path, "--dump-dom", page.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = Dom()
    dom.feed(dumped.stdout)
    charts = {attrs.get("data-chart") for tag, attrs in dom.tags if tag == "svg"}
    assert charts == CHARTS
    assert sum(1 for tag, attrs in dom.tags if tag == "rect" and attrs.get("class") == "bar") >= 10
    assert [tag for tag, _ in dom.tags if tag in {"script", "img"}] == []
    assert dom.title == "Backup Steward — estate audit"  # the injected script never ran
    finding_rows = [1 for tag, _ in dom.tags if tag == "tr"]
    assert len(finding_rows) >= len(result.findings)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "audit-report.png"
    shot.unlink(missing_ok=True)
    (ARTIFACTS / "audit-report.html").write_text(page.read_text(encoding="utf-8"), encoding="utf-8")
    taken = run_browser(chromium, tmp_path, "--window-size=1280,1800", f"--screenshot={shot}", page.as_uri())
    assert taken.returncode == 0, taken.stderr[-2000:]
    width, height, colours = png_pixels(shot)
    assert (width, height) == (1280, 1800)
    # The charts were painted: the coverage green and every severity colour with findings are on screen.
    assert rgb(GOOD) in colours
    for name, count in result.by_severity().items():
        if count:
            assert rgb(SEVERITY_COLOURS[name]) in colours, f"no {name} pixels in the screenshot"
