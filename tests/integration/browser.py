"""Headless Chromium for the dashboard tests (Debian's chromium, chromium-driver
and python3-selenium; nothing downloaded): a module-scoped `browser` fixture
that skips with the reason when one is missing, a page helper that waits for
a condition evaluated in the page, screenshots under the test output dir, and
a check that a page logged no JavaScript errors."""

import base64
import os
import shutil

import pytest

from pbutil import BUILDDIR, t, wait_for

CHROMIUM = os.environ.get("PB_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PB_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOT_DIR = os.path.join(BUILDDIR, "test-screenshots")
# The dashboard's files in the source tree (what the coordinator serves by default).
# Loads that may fail without a bug: a snapshot's static.js is absent when
# served live, and the chart tests check Chart.js themselves.
ALLOWED_LOAD_ERRORS = ("static.js", "favicon.ico", "vendor/chart.js")
WEB_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "web"))


def _missing():
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "python3-selenium is not installed"
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.access(path, os.X_OK) or shutil.which(os.path.basename(path))):
            return f"{path} not found (install Debian's {pkg})"
    return None


def start_browser(width=1280, height=900):
    """A headless Chromium driven by chromedriver, or pytest.skip."""
    why = _missing()
    if why:
        pytest.skip(f"browser tests need headless Chromium: {why}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={width},{height}", "--lang=en-US"):
        opts.add_argument(a)
    if os.access(CHROMIUM, os.X_OK):
        opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    svc = Service(CHROMEDRIVER if os.access(CHROMEDRIVER, os.X_OK) else shutil.which("chromedriver"))
    try:
        drv = webdriver.Chrome(service=svc, options=opts)
    except Exception as e:  # a broken install is a skip, with the reason shown
        pytest.skip(f"cannot start headless Chromium: {e}")
    drv.set_page_load_timeout(t(30))
    drv.set_script_timeout(t(30))
    return drv


class Page:
    """One browser pointed at one coordinator."""

    def __init__(self, driver, base_url):
        self.d = driver
        self.base = base_url.rstrip("/")
        self.js_errors()  # drain what earlier tests left in the browser log

    def open(self, path, ready="document.readyState === 'complete'", timeout=None):
        """Load base + path, then wait until the JS expression `ready` is truthy."""
        self.d.get(self.base + "/" + path.lstrip("/"))
        if ready:
            self.wait(ready, timeout)
        return self

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def wait(self, expr, timeout=None, what=None):
        """Wait until the JS expression is truthy; returns its value."""
        return wait_for(lambda: self.js("try { return (" + expr + "); } catch (e) { return null; }"),
                        timeout or t(15), 0.1, what or expr)

    def text(self, css):
        return self.js("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                       css)

    def screenshot(self, name):
        """Save a PNG under $PB_BUILDDIR/test-screenshots/; returns its path."""
        os.makedirs(SCREENSHOT_DIR, exist_ok=True)
        path = os.path.join(SCREENSHOT_DIR, name + ".png")
        # The whole page, not just the viewport: make the viewport as tall as
        # the page (DevTools device metrics), let the layout and Chart.js's
        # resize observers settle, capture, restore. Same width, so no reflow
        # beyond the vertical scrollbar going away.
        try:
            w, h = self.js("return [window.innerWidth, Math.min(8000, Math.max("
                           "document.documentElement.scrollHeight, window.innerHeight))];")
            self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": w, "height": h, "deviceScaleFactor": 1, "mobile": False})
            try:
                self.d.execute_async_script(
                    "const done = arguments[arguments.length - 1];"
                    "requestAnimationFrame(() => setTimeout(() => requestAnimationFrame(done), 100));")
                shot = self.d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
            finally:
                self.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
            with open(path, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        except Exception:
            self.d.save_screenshot(path)
        return path

    def resize(self, width, height):
        self.d.set_window_size(width, height)

    def js_errors(self, allow=ALLOWED_LOAD_ERRORS):
        """SEVERE browser-log lines (exceptions, failed loads) except allowed URLs."""
        try:
            logs = self.d.get_log("browser")
        except Exception:
            return []
        return [e["message"] for e in logs
                if e.get("level") == "SEVERE" and not any(a in e.get("message", "") for a in allow)]

    def assert_no_js_errors(self, allow=ALLOWED_LOAD_ERRORS):
        errs = self.js_errors(allow)
        assert not errs, "JavaScript errors on the page:\n" + "\n".join(errs)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for a module's tests (skips when not installed)."""
    drv = start_browser()
    try:
        yield drv
    finally:
        drv.quit()


def chart_served(api):
    """True when the coordinator serves Chart.js at /vendor/chart.js."""
    r = api.get("/vendor/chart.js")
    return r.status == 200 and b"Chart" in r.body[:200000]
