"""A real headless Chromium for tests that look at HTML pages, driven by Selenium through Debian's
chromedriver. Debian's chromium and chromium-driver are installed system-wide with apt-get when missing
and we are root, unless GEOCONTEXT_NO_APT is set (`make test NO_APT=1`); the caller is skipped, saying
why, when they are missing and not installed."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1800")


def _binaries() -> tuple[str | None, str | None]:
    return (shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver"))


def ensure_chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver, installing Debian's packages when missing."""
    browser, driver = _binaries()
    if browser and driver:
        return browser, driver
    if os.environ.get("GEOCONTEXT_NO_APT"):
        pytest.skip("chromium/chromedriver not installed, and GEOCONTEXT_NO_APT (make test NO_APT=1) says not to"
                    " apt-get install them: apt-get install chromium chromium-driver")
    if not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.skip("chromium/chromedriver not installed and cannot be (needs root and apt-get):"
                    " apt-get install chromium chromium-driver")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
            subprocess.run(cmd, check=True, capture_output=True, timeout=900, env=env)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"could not install chromium and chromium-driver with apt-get: {exc}")
    browser, driver = _binaries()
    if not (browser and driver):
        pytest.skip("apt-get ran but chromium or chromedriver is still missing")
    return browser, driver


def start_browser(profile_dir):
    """A headless Chromium with a fresh profile that records the page's console messages."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (requirements.txt)")
    from selenium.webdriver.chrome.service import Service

    browser, driver = ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit chromedriver path: Selenium Manager then never tries to download a driver.
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def console_errors(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def broken_images(driver) -> list[str]:
    """Every <img> that did not load (the page is fully loaded when `get` returns)."""
    return driver.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.alt || i.src.slice(0, 60));")
