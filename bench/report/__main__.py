"""Render docs/benchmarks.md again from docs/benchmarks.json, without measuring: for a change to the
report itself, which must not need a five-minute run on both cores.

    .venv/bin/python -m bench.report [--json docs/benchmarks.json] [--out docs/benchmarks.md | --out -] [--check]

--check writes nothing and fails if the report file is not what the JSON renders to (a hand edit, or
a change to the renderer that changes the report).
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
    parser.add_argument("--check", action="store_true", help="compare with the report file instead of writing it")
    args = parser.parse_args()
    run = load(args.json)
    if args.check:
        same = Path(args.out).read_text() == document(run)
        print(f"{args.out}: {'as rendered' if same else 'differs from what ' + str(args.json) + ' renders to'}")
        return 0 if same else 1
    if args.out == "-":
        sys.stdout.write(document(run))
    else:
        write(run, Path(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
