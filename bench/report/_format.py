"""How the report writes numbers (tables: bench._common.table)."""

from __future__ import annotations


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
