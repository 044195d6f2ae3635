"""What long work shows the user: progress bars (on a terminal, silent in logs unless
GEOCONTEXT_PROGRESS=1) and one-line messages."""
from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def progress(iterable=None, **kwargs):
    setting = os.environ.get("GEOCONTEXT_PROGRESS", "")
    disable = {"1": False, "0": True}.get(setting, not sys.stderr.isatty())
    return tqdm(iterable, disable=disable, dynamic_ncols=True, **kwargs)


def say(message: str) -> None:
    """One line on standard output, flushed at once so logs show where a long run is."""
    print(message, flush=True)
