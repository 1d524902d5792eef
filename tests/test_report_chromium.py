"""The report in a real browser: headless Chromium loads it with no console error, no network
request, every thumbnail decoded and visible; a screenshot shows them.

Chromium is driven over the DevTools protocol (a websocket): the page's
console and log entries, its requests and its images are read from the
browser itself, not guessed from the HTML. Debian's `chromium` package is
part of the test environment (scripts/test.sh installs it): without it
this test fails rather than skips.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import websocket
from PIL import Image

from read_library import invoke, score_into, write_library

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--window-size=1280,1600",
    "--remote-debugging-port=0",
]
TIMEOUT_S = 30


@dataclass
class LoadedPage:
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    screenshot: Image.Image | None = None


class DevTools:
    """A minimal DevTools protocol client: commands by id, events collected on the way."""

    def __init__(self, url: str) -> None:
        self.socket = websocket.create_connection(url, timeout=TIMEOUT_S, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + TIMEOUT_S
        for event in self.events:
            if event.get("method") == method:
                return event
        while time.monotonic() < deadline:
            message = json.loads(self.socket.recv())
            self.events.append(message)
            if message.get("method") == method:
                return message
        raise TimeoutError(f"no {method} within {TIMEOUT_S} s")

    def close(self) -> None:
        self.socket.close()


def _debugger_url(profile: Path, process: subprocess.Popen) -> str:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + TIMEOUT_S
    while not port_file.exists() or not port_file.read_text().strip():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"chromium did not start (exit {process.poll()})")
        time.sleep(0.1)
    port = int(port_file.read_text().split()[0])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT_S) as response:
        targets = json.load(response)
    return next(target["webSocketDebuggerUrl"] for target in targets if target["type"] == "page")


IMAGE_FACTS = """JSON.stringify(Array.from(document.querySelectorAll('figure.tile img')).map(img => {
  const box = img.getBoundingClientRect();
  return {complete: img.complete, naturalWidth: img.naturalWidth, width: box.width, height: box.height,
          left: box.left, top: box.top, visible: getComputedStyle(img).visibility === 'visible', src: img.src};
}))"""


def load_in_chromium(chromium: str, page: Path) -> LoadedPage:
    profile = Path(tempfile.mkdtemp(prefix="eatc-chromium-"))
    process = subprocess.Popen(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        tools = DevTools(_debugger_url(profile, process))
        try:
            for domain in ("Runtime", "Log", "Page", "Network"):
                tools.call(f"{domain}.enable")
            tools.events.clear()
            tools.call("Page.navigate", url=page.as_uri())
            tools.wait_for("Page.loadEventFired")
            images = json.loads(tools.call("Runtime.evaluate", expression=IMAGE_FACTS)["result"]["value"])
            shot = tools.call("Page.captureScreenshot", format="png")["data"]
            loaded = LoadedPage(images=images, screenshot=Image.open(io.BytesIO(base64.b64decode(shot))).convert("RGB"))
            for event in tools.events:
                method, params = event.get("method"), event.get("params", {})
                if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert", "warning"):
                    loaded.console_errors.append(json.dumps(params["args"]))
                elif method == "Runtime.exceptionThrown":
                    loaded.console_errors.append(params["exceptionDetails"]["text"])
                elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                    loaded.console_errors.append(params["entry"]["text"])
                elif method == "Network.requestWillBeSent":
                    loaded.requests.append(params["request"]["url"])
            return loaded
        finally:
            tools.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("Debian's chromium is not installed: apt-get install -y chromium (scripts/test.sh does it)")
    return found


@pytest.fixture(scope="module")
def report(tmp_path_factory, micro_model_path) -> Path:
    root = tmp_path_factory.mktemp("chromium")
    library = write_library(root / "photos")
    db = str(root / "photos.db")
    score_into(db, library.root, model_path=micro_model_path)
    (library.album("beach") / "sunset.jpg").unlink()  # a vanished file: a placeholder, not a broken image
    out = root / "report.html"
    invoke("report", "--db", db, "--out", out)
    return out


def test_report_loads_in_chromium_without_errors_or_network(chromium, report, tmp_path):
    page = load_in_chromium(chromium, report)
    assert page.console_errors == []
    assert all(url.startswith(("file://", "data:")) for url in page.requests), page.requests
    assert page.images, "the page shows thumbnails"
    broken = [image["src"][:60] for image in page.images if not (image["complete"] and image["naturalWidth"] > 0)]
    assert broken == []  # every thumbnail (and the placeholder) decoded
    assert all(image["visible"] and image["width"] > 40 and image["height"] > 30 for image in page.images)
    page.screenshot.save(tmp_path / "report.png")


def test_screenshot_shows_the_thumbnails(chromium, report):
    page = load_in_chromium(chromium, report)
    pixels = np.asarray(page.screenshot, dtype=np.float64)
    assert pixels.std() > 20  # not a blank page
    on_screen = [
        image for image in page.images
        if image["top"] >= 0 and image["top"] + image["height"] <= page.screenshot.height
        and image["src"].startswith("data:image/jpeg")
    ]
    assert len(on_screen) >= 5
    for image in on_screen[:5]:
        # The screenshot, where the page says the image is, looks like the thumbnail itself.
        thumbnail = Image.open(io.BytesIO(base64.b64decode(image["src"].split(",", 1)[1]))).convert("RGB")
        box = [round(image[key]) for key in ("left", "top")]
        box += [box[0] + round(image["width"]), box[1] + round(image["height"])]
        shown = np.asarray(page.screenshot.crop(box).resize(thumbnail.size), dtype=np.float64)
        assert np.abs(shown - np.asarray(thumbnail, dtype=np.float64)).mean() < 12
