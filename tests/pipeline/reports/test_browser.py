"""The report test's browser: installing it system-wide with apt-get can be declined."""
import subprocess

import browser
import pytest


def test_no_apt_skips_instead_of_installing(monkeypatch):
    monkeypatch.setattr(browser, "_binaries", lambda: (None, None))
    monkeypatch.setattr(browser.os, "geteuid", lambda: 0)
    monkeypatch.setattr(browser.shutil, "which", lambda name: f"/usr/bin/{name}")

    def no_install(*args, **kwargs):
        raise AssertionError(f"apt-get ran: {args}")

    monkeypatch.setattr(subprocess, "run", no_install)
    monkeypatch.setenv("GEOCONTEXT_NO_APT", "1")
    with pytest.raises(pytest.skip.Exception, match="GEOCONTEXT_NO_APT"):
        browser.ensure_chromium()
