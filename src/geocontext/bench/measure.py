"""Run one geocontext command and record its wall time and peak memory (resident set) as JSON.

    python -m geocontext.bench.measure OUT.json -- run --data ... --features ... --out ...
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    from ..cli import main as cli

    start = time.perf_counter()
    code = cli(argv[2:])
    wall = time.perf_counter() - start
    Path(argv[0]).write_text(json.dumps({"exit_code": code, "wall_s": wall, "peak_rss_gb": peak_rss_kb() / 1024**2}))
    return code


def measure_command(argv: list[str], record: Path, log: Path) -> dict:
    """`geocontext ARGV...` in a fresh process (its output to `log`): exit code, wall time, peak memory."""
    with open(log, "w") as handle:
        code = subprocess.call([sys.executable, "-m", "geocontext.bench.measure", str(record), "--", *argv],
                               stdout=handle, stderr=subprocess.STDOUT)
    if code != 0:
        raise RuntimeError(f"`geocontext {' '.join(argv)}` failed (exit {code}); see {log}")
    return json.loads(Path(record).read_text())


def peak_rss_kb() -> int:
    """This process's own peak resident memory. Not getrusage's ru_maxrss: Linux carries that over
    an exec from the forking parent, so a child of a big process would report the parent's size."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
