"""Reading a types dataset at the published size: the plain .jsonl against the shipped .jsonl.gz.

One generated dataset (synthetic/types_data.py, 121,930 photos like `types_dataset_1`) is written once and
gzipped; each file is then read in a fresh process, alternating file by file within each repeat so that
background load hits both alike, three ways: whole (what `types train` / `evaluate` hold), and streamed
chunk by chunk as `types predict` reads it, at its default chunk and at one eighth of it (peak memory
follows the chunk, not the file). Wall seconds and peak resident memory (VmHWM) per read.

    python -m geocontext.bench.types_read [--rows 121930] [--repeats 3] [--cache bench-cache/types] [--json out.json]
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PUBLISHED_ROWS = 121_930
CHUNKS = {"whole": 0, "stream": 65_536, "stream/8": 8_192}  # 0: read_types, the whole file at once


def _child(mode: str, path: str) -> dict:
    from ..typetags.reader import ReadReport, iter_rows, read_types
    from .measure import peak_rss_kb

    imports = peak_rss_kb() / 1024
    start = time.perf_counter()
    if CHUNKS[mode]:
        report = ReadReport(path)
        rows = sum(len(chunk) for chunk in iter_rows(path, report, chunk_rows=CHUNKS[mode]))
    else:
        rows = len(read_types(path)[0])
    return {"rows": rows, "seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_kb() / 1024,
            "imports_rss_mb": imports}


def _measure(mode: str, path: Path) -> dict:
    src = str(Path(__file__).resolve().parents[2])  # this checkout's package, whatever the caller's path
    env = {**os.environ, "GEOCONTEXT_PROGRESS": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, (src, os.environ.get("PYTHONPATH"))))}
    result = subprocess.run([sys.executable, "-m", "geocontext.bench.types_read", "--child", mode, str(path)],
                            capture_output=True, text=True, env=env, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def make_files(folder: Path, rows: int, seed: int = 11) -> tuple[Path, Path]:
    from ..synthetic.types_data import write_dataset

    folder.mkdir(parents=True, exist_ok=True)
    plain, packed = folder / f"types-{rows}.jsonl", folder / f"types-{rows}.jsonl.gz"
    if not (plain.is_file() and packed.is_file()):
        write_dataset(plain, n=rows, seed=seed)
        with open(plain, "rb") as src, gzip.open(packed, "wb", compresslevel=6) as dst:  # gzip's default level
            shutil.copyfileobj(src, dst, 1 << 20)
    return plain, packed


def run_benchmark(cache: Path, rows: int = PUBLISHED_ROWS, repeats: int = 3) -> dict:
    plain, packed = make_files(cache, rows)
    runs: dict = {mode: {"jsonl": [], "jsonl.gz": []} for mode in CHUNKS}
    for _ in range(repeats):
        for mode in CHUNKS:
            for name, path in (("jsonl", plain), ("jsonl.gz", packed)):
                runs[mode][name].append(_measure(mode, path))
    med = {mode: {name: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "peak_rss_mb", "imports_rss_mb")}
                  for name, rs in by.items()} for mode, by in runs.items()}
    return {"rows": rows, "repeats": repeats, "bytes": {"jsonl": plain.stat().st_size, "jsonl.gz": packed.stat().st_size},
            "rows_read": {mode: {n: rs[0]["rows"] for n, rs in by.items()} for mode, by in runs.items()},
            "median": med, "runs": runs,
            "gz_time_ratio": {mode: m["jsonl.gz"]["seconds"] / m["jsonl"]["seconds"] for mode, m in med.items()}}


def markdown(result: dict) -> str:
    b, med = result["bytes"], result["median"]
    rows = ["| read | chunk | .jsonl s | .jsonl.gz s | gz / plain time | .jsonl peak MiB | .jsonl.gz peak MiB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for mode, chunk in CHUNKS.items():
        m = med[mode]
        rows.append(f"| {'whole file (train, evaluate)' if not chunk else 'streamed (predict)'} | "
                    f"{f'{chunk:,}' if chunk else '-'} | {m['jsonl']['seconds']:.1f} | {m['jsonl.gz']['seconds']:.1f} | "
                    f"{result['gz_time_ratio'][mode]:.2f}x | {m['jsonl']['peak_rss_mb']:.0f} | {m['jsonl.gz']['peak_rss_mb']:.0f} |")
    return (f"{result['rows']:,} generated photos: {b['jsonl'] / 2**20:.0f} MiB as .jsonl, {b['jsonl.gz'] / 2**20:.0f} MiB"
            f" as .jsonl.gz (the published file: 242 MB). Each read in a fresh process (its imports alone:"
            f" {med['whole']['jsonl']['imports_rss_mb']:.0f} MiB), median of {result['repeats']} alternating repeats."
            "\n\n" + "\n".join(rows))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m geocontext.bench.types_read", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=PUBLISHED_ROWS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path("bench-cache") / "types")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child)))
        return 0
    result = run_benchmark(args.cache, args.rows, args.repeats)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
