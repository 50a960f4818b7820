"""How the report writes numbers and tables."""

from __future__ import annotations

from collections.abc import Iterable


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def mib(kib: int | None) -> str:
    return "—" if kib is None else f"{kib / 1024:.0f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def table(head: list[str], align: str, rows: Iterable[list[str]]) -> list[str]:
    """A Markdown table; ``align`` has one letter per column: l (left) or r (right)."""
    rule = "".join("---|" if a == "l" else "---:|" for a in align)
    return ["| " + " | ".join(head) + " |", "|" + rule, *("| " + " | ".join(row) + " |" for row in rows)]
