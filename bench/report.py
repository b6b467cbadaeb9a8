"""Figures, their verdicts, and the two outputs: one aligned text table and a JSON file."""

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Spread:
    """min / median / max of repeated samples; the median is the p50 every target is judged on."""

    min: float
    median: float
    max: float
    n: int
    samples: tuple[float, ...] = ()  # in measurement order, for the JSON

    @classmethod
    def of(cls, values: Sequence[float]) -> "Spread":
        if not values:
            raise ValueError("no samples")
        return cls(
            min=round(min(values), 3),
            median=round(statistics.median(values), 3),
            max=round(max(values), 3),
            n=len(values),
            samples=tuple(round(value, 3) for value in values),
        )


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    ours: Spread
    comparison: Spread | None
    comparison_label: str
    target: str
    passed: bool | None  # None: informational, no target
    verdict_note: str = ""  # e.g. the ratio a relative target was judged on
    section: str = ""  # the table prints a heading row where the section changes

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return self.verdict_note or "-"
        verdict = "PASS" if self.passed else "MISS"
        return f"{verdict} ({self.verdict_note})" if self.verdict_note else verdict


def at_most(limit: float) -> Callable[[Spread], bool]:
    return lambda spread: spread.median <= limit


def at_least(limit: float) -> Callable[[Spread], bool]:
    return lambda spread: spread.median >= limit


def _number(value: float, unit: str) -> str:
    if unit == "queries":
        return f"{value:.0f}"
    if unit == "x":
        return f"{value:.1f}"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _spread_cell(spread: Spread | None, unit: str) -> str:
    if spread is None:
        return "-"
    return " / ".join(_number(value, unit) for value in (spread.min, spread.median, spread.max))


def table(figures: Sequence[Figure]) -> str:
    """Plain text, columns padded to the widest cell; numbers are min / median / max (n samples)."""
    header = ("figure", "ours (min / med / max)", "comparison (min / med / max)", "target", "verdict")
    rows = [header]
    section = ""
    for figure in figures:
        if figure.section and figure.section != section:
            section = figure.section
            rows.append((f"[{section}]", "", "", "", ""))
        comparison = _spread_cell(figure.comparison, figure.unit)
        if figure.comparison is not None and figure.comparison_label:
            comparison = f"{comparison}  [{figure.comparison_label}]"
        ours = f"{_spread_cell(figure.ours, figure.unit)}  (n={figure.ours.n})"
        rows.append((f"{figure.label} ({figure.unit})", ours, comparison, figure.target, figure.verdict))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def json_write(path: Path, figures: Sequence[Figure], meta: dict[str, Any]) -> None:
    payload = {
        "meta": meta,
        "figures": [
            {
                "key": figure.key,
                "label": figure.label,
                "section": figure.section or None,
                "unit": figure.unit,
                "ours": asdict(figure.ours),
                "comparison": asdict(figure.comparison) if figure.comparison else None,
                "comparison_label": figure.comparison_label or None,
                "target": figure.target,
                "verdict": figure.verdict,
                "passed": figure.passed,
            }
            for figure in figures
        ],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
