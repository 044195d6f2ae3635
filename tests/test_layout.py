"""The package's layout rules (`make layout`): no import cycle, no module over 400 lines; and the README's
list of Makefile verbs is what `make help` prints."""
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO


def test_layout_holds():
    done = subprocess.run([sys.executable, str(REPO / "tools" / "layout_check.py"), str(REPO / "src" / "geocontext")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("layout holds")


def test_readme_make_help_block_is_make_help():
    """Issue 31, item 7: the README's list of `make` verbs had fallen behind the Makefile."""
    if shutil.which("make") is None:
        pytest.skip("no `make` on this machine")
    printed = subprocess.run(["make", "-s", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"`make help` lists the Makefile's verbs.*?```text\n(.*?)```", readme, re.S)
    assert block is not None and block.group(1) == printed, printed
