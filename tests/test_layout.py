"""The package's layout rules (`make layout`): no import cycle, no module over 400 lines."""
import subprocess
import sys

from conftest import REPO


def test_layout_holds():
    done = subprocess.run([sys.executable, str(REPO / "tools" / "layout_check.py"), str(REPO / "src" / "geocontext")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("layout holds")
