"""Headless Debian chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe).

Standard library only: chromium reads NUL-terminated JSON commands on fd 3 and writes
responses and events on fd 4. No port, no websocket, no node.
"""

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-pipe"]


class BrowserError(Exception):
    """Chromium is missing, did not start, or answered a command with an error."""


def find_chromium():
    """Path of Debian's chromium (or another Chromium/Chrome on PATH), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless chromium with a fresh profile; use as a context manager."""

    def __init__(self, timeout=20.0):
        exe = find_chromium()
        if exe is None:
            raise BrowserError("chromium not found (apt-get install chromium)")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="orchlab-chromium-")
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def child_fds():  # the pipe ends become fds 3 and 4 in chromium
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        try:
            self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                         preexec_fn=child_fds, close_fds=False, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError as e:
            raise BrowserError(f"cannot start {exe}: {e}") from None
        finally:
            os.close(to_chrome_r)
            os.close(from_chrome_w)
        self._buf, self._id, self.events = b"", 0, []
        try:
            self.version = self.call("Browser.getVersion")["product"]
        except BrowserError:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Ask chromium to quit, kill it if it does not, remove the profile."""
        if self.proc.poll() is None:
            try:
                self.send("Browser.close")
                self.proc.wait(timeout=5)
            except (OSError, BrowserError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def send(self, method, params=None, session=None):
        """Send a command; returns its id."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        try:
            os.write(self._w, json.dumps(msg).encode() + b"\0")
        except OSError as e:
            raise BrowserError(f"chromium is gone ({e})") from None
        return self._id

    def _read(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise BrowserError("chromium did not answer in time")
            data = os.read(self._r, 1 << 16)
            if not data:
                raise BrowserError("chromium closed the pipe (did it start?)")
            self._buf += data
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    def call(self, method, params=None, session=None):
        """Send a command and wait for its result; events that arrive meanwhile go to .events."""
        want = self.send(method, params, session)
        deadline = time.monotonic() + self.timeout
        while True:
            msg = self._read(deadline)
            if msg.get("id") == want:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error'].get('message')}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method, session=None):
        """The first event of that name (already received or to come)."""
        deadline = time.monotonic() + self.timeout
        while True:
            for e in self.events:
                if e["method"] == method and (session is None or e.get("sessionId") == session):
                    self.events.remove(e)
                    return e
            msg = self._read(deadline)
            if "method" in msg:
                self.events.append(msg)

    def open(self, url, width=1200, height=900):
        """A new tab showing url, loaded; returns a Page."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        page.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        page.call("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired", session)
        return page


class Page:
    """One tab, attached through a flat session."""

    def __init__(self, browser, session):
        self.browser, self.session = browser, session

    def call(self, method, params=None):
        """A command in this tab."""
        return self.browser.call(method, params, self.session)

    def eval(self, expression):
        """Evaluate JavaScript; returns its value (JSON-serialisable)."""
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise BrowserError(f"JavaScript threw: {r['exceptionDetails'].get('text')}")
        return r["result"].get("value")

    def click(self, x, y):
        """A real mouse click (press and release) at viewport coordinates."""
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def events(self, method):
        """Events of that name this tab has received so far."""
        return [e["params"] for e in self.browser.events
                if e["method"] == method and e.get("sessionId") == self.session]

    def errors(self):
        """Console errors, uncaught exceptions and error log entries so far."""
        self.eval("0")  # flush: events queued before this call are read
        out = [" ".join(str(a.get("value", a.get("description", ""))) for a in e.get("args", []))
               for e in self.events("Runtime.consoleAPICalled") if e.get("type") in ("error", "assert")]
        out += [e["exceptionDetails"].get("text", "") + " " +
                str(e["exceptionDetails"].get("exception", {}).get("description", ""))
                for e in self.events("Runtime.exceptionThrown")]
        out += [e["entry"].get("text", "") for e in self.events("Log.entryAdded") if e["entry"].get("level") == "error"]
        return out

    def screenshot(self, path):
        """A full-page PNG."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        return size
