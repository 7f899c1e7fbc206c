"""Open a page in headless Chromium and report what a person would see go wrong.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so no port, no extra package
and no browser download are involved: Debian's ``chromium`` package is enough.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions", "--mute-audio"]


def find_chromium() -> str | None:
    """The Chromium binary, installing Debian's package first when this is root with apt-get
    (``make test`` does the same, so CI always has it)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600, check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, capture_output=True, timeout=1200, check=False)
    return shutil.which("chromium")


@dataclass
class PageCheck:
    images: list[dict] = field(default_factory=list)  # per <img>: complete, naturalWidth, alt
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    title: str = ""


class DevTools:
    """A minimal DevTools-protocol client over Chromium's pipe."""

    def __init__(self, chromium: str, profile: Path):
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        def wire_fds():  # the child sees the protocol on fds 3 (reads) and 4 (writes)
            # Copy both ends above 10 first: either may already sit on 3 or 4 (os.pipe takes the
            # lowest free numbers), and dup2 onto itself would leave it close-on-exec.
            high_r, high_w = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds, close_fds=False,  # noqa: PLW1509 - before any thread starts: the pipes must be fds 3 and 4
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self.receive(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def receive(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_browser], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self.receive(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def close(self) -> None:
        try:
            os.write(self.to_browser, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.process.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        os.close(self.to_browser)
        os.close(self.from_browser)


def check_page(chromium: str, path: Path, timeout: float = 120) -> PageCheck:
    """Load ``path`` in headless Chromium; return its images' load state and every error it logged."""
    with tempfile.TemporaryDirectory() as profile:
        tools = DevTools(chromium, Path(profile))
        try:
            target = tools.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
            session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                tools.send(f"{domain}.enable", session=session)
            tools.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
            tools.wait_for("Page.loadEventFired", timeout=timeout)
            script = ("JSON.stringify({title: document.title, images: Array.from(document.images).map("
                      "i => ({complete: i.complete, naturalWidth: i.naturalWidth, alt: i.alt}))})")
            result = tools.send("Runtime.evaluate", {"expression": script, "returnByValue": True}, session=session)
            page = json.loads(result["result"]["value"])
        finally:
            tools.close()
    check = PageCheck(images=page["images"], title=page["title"])
    for event in tools.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            values = (str(arg.get("value", arg.get("description"))) for arg in params.get("args", []))
            check.errors.append("console: " + " ".join(values))
        elif method == "Runtime.exceptionThrown":
            check.errors.append("exception: " + params["exceptionDetails"].get("text", ""))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            check.errors.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
    return check


def screenshot(chromium: str, path: Path, out: Path, width: int = 1280, height: int = 2400) -> None:
    """A PNG of the page as Chromium renders it at ``width`` x ``height`` pixels."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                *FLAGS,
                f"--user-data-dir={profile}",
                "--hide-scrollbars",
                f"--window-size={width},{height}",
                f"--screenshot={out.resolve()}",
                path.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
    if not out.is_file():  # Chromium exits 0 even when the page failed to load
        raise RuntimeError(f"Chromium wrote no screenshot of {path}")
