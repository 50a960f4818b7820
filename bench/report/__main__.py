"""Render docs/benchmarks.md again from docs/benchmarks.json, without measuring: for a change to the
report itself, which must not need a five-minute run on both cores.

    .venv/bin/python -m bench.report [--json docs/benchmarks.json] [--out docs/benchmarks.md | --out -]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.report import document, write
from bench.results import load

DOCS = Path(__file__).resolve().parents[2] / "docs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=DOCS / "benchmarks.json", help="results written by bench/e2e.py")
    parser.add_argument("--out", default=str(DOCS / "benchmarks.md"), help="report file, or - for stdout")
    args = parser.parse_args()
    run = load(args.json)
    if args.out == "-":
        sys.stdout.write(document(run))
    else:
        write(run, Path(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
