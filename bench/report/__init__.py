"""The end-to-end report (docs/benchmarks.md), rendered from typed results (bench/results.py), one
function per section.

    .venv/bin/python -m bench.report      (docs/benchmarks.md again from docs/benchmarks.json, no measuring)
"""

from __future__ import annotations

from pathlib import Path

from bench.report._view import View
from bench.report.details import details, floor
from bench.report.profile import profile
from bench.report.summary import cpu_targets, figures_table, intro, ratios, targets
from bench.results import E2ERun

SECTIONS = (intro, figures_table, ratios, floor, targets, cpu_targets, details, profile)

PREAMBLE = (
    "# Benchmarks\n\nWritten by `make bench` (bench/e2e.py); do not edit by hand. "
    "Every figure below comes from one run on the machine named in its header.\n\n"
    "The agent-load benchmark (`make bench-agent`: a streaming tool-calling agent under 100 and 1,000 "
    "conversations and a reconnect storm) has its own page: [benchmarks-agent.md](benchmarks-agent.md).\n\n"
)
# What the profiles found and what was changed is written by people, as decision records beside
# this file; the report links them rather than copying them, so that they have one home.
DECISIONS = (
    "## What the profiles found, and what was changed\n\n"
    "Written by hand, as decision records (context, what was measured, what was chosen): "
    "[decisions/](decisions/).\n"
)


def render(run: E2ERun) -> str:
    """The report as the bench prints it."""
    view = View.of(run)
    lines: list[str] = []
    for section in SECTIONS:
        if lines:
            lines.append("")
        lines += section(view)
    text = "\n".join(lines) + "\n"
    if run.meta.wall_s is not None:
        text += f"\nbench/e2e.py wall time: {run.meta.wall_s:.0f} s\n"
    return text


def document(run: E2ERun) -> str:
    """docs/benchmarks.md: the report under the page's own title, then the link to the decisions."""
    return PREAMBLE + render(run).replace("# end to end", "## End to end", 1) + "\n" + DECISIONS


def write(run: E2ERun, doc: Path) -> None:
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(document(run))
