"""Write a run's results: ``results.json``, ``summary.csv``, ``summary.xlsx``.

:func:`result_to_dict` is the one place a :class:`~.audit.DomainResult`
becomes plain data; the summary table, the report and the CLI all read that
form. Text in the summary files comes from strangers (DNS TXT records, the
input spreadsheet), so cells that a spreadsheet program would run as a
formula are neutralised with a leading apostrophe (OWASP "CSV injection").
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__
from .audit import STATUSES, DomainResult
from .regions import table_date

__all__ = [
    "RunInfo",
    "neutralise_formula",
    "read_results",
    "result_to_dict",
    "summary_frame",
    "write_outputs",
    "write_summary",
]

log = logging.getLogger(__name__)

#: A cell starting with one of these is run as a formula by Excel,
#: LibreOffice or Google Sheets.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b",
                  "\uff0d", "\uff20")


@dataclass
class RunInfo:
    """What a run was: when, over which DNS, with which tables."""

    resolver: str
    input: str = ""
    default_region: str | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished: datetime | None = None
    dns: dict[str, int] = field(default_factory=dict)

    def to_dict(self, results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        counts = Counter(r["status"] for r in results)
        finished = self.finished or datetime.now(UTC)
        return {
            "started": self.started.isoformat(timespec="seconds"),
            "finished": finished.isoformat(timespec="seconds"),
            "elapsed_seconds": round(
                (finished - self.started).total_seconds(), 3
            ),
            "kit_version": __version__,
            "resolver": self.resolver,
            "input": self.input,
            "default_region": self.default_region,
            "region_table_taken": table_date(),
            "rows": len(results),
            "counts": {s: counts.get(s, 0) for s in STATUSES},
            "dns": dict(self.dns),
        }


def result_to_dict(result: DomainResult) -> dict[str, Any]:
    """The JSON form of one domain's result (see the README for fields)."""
    region = result.region
    data: dict[str, Any] = {
        "row": result.row,
        "input": result.input,
        "domain": result.domain,
        "region": region.code if region else None,
        "region_name": region.name if region else None,
        "status": result.status,
        "reason": result.reason,
        "notes": list(result.notes),
        "columns": dict(result.columns),
        "spf": result.spf.to_dict(),
        "ips": [v.to_dict() for v in result.ips],
        "evidence": [a.to_dict() for a in result.evidence],
    }
    data.update(result.extra)
    return data


def neutralise_formula(value: Any) -> Any:
    """Prefix text a spreadsheet would evaluate with ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def summary_frame(results: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per input row: the flat columns of the summary files."""
    rows = []
    for data in results:
        failing = [f"{v['ip']} {v['result']}" for v in data["ips"]
                   if v["result"] != "pass"]
        row = {
            "row": data["row"],
            "input": data["input"],
            "domain": data["domain"] or "",
            "region": data["region"] or "",
            "status": data["status"],
            "reason": data["reason"],
            "spf_record": data["spf"]["record"] or "",
            "dns_lookups": data["spf"]["dns_lookups"],
            "void_lookups": data["spf"]["void_lookups"],
            "ips_not_passing": "; ".join(failing),
            "notes": "; ".join(data["notes"]),
        }
        row.update(_extra_columns(data))
        row.update({f"in:{k}" if k in row else k: v
                    for k, v in data["columns"].items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _extra_columns(data: Mapping[str, Any]) -> dict[str, Any]:
    """Flat columns for the optional checks, when a result has them."""
    extra: dict[str, Any] = {}
    findings = data.get("findings")
    if findings:
        extra["findings"] = "; ".join(
            f"{f['code']} ({f['severity']})" for f in findings
        )
    proposal = data.get("proposal")
    if proposal:
        extra["proposed_record"] = proposal.get("record") or ""
    return extra


def write_summary(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write ``summary.csv`` and ``summary.xlsx`` with formulas neutralised."""
    safe = frame.map(neutralise_formula)
    csv_path, xlsx_path = out_dir / "summary.csv", out_dir / "summary.xlsx"
    safe.to_csv(csv_path, index=False, encoding="utf-8")
    safe.to_excel(xlsx_path, index=False, sheet_name="summary",
                  engine="openpyxl")
    return [csv_path, xlsx_path]


def write_outputs(
    results: Sequence[DomainResult], info: RunInfo, out_dir: str | Path
) -> dict[str, Path]:
    """Write ``results.json`` and the summary files into ``out_dir``.

    Returns
    -------
    dict
        The paths written, keyed ``json``, ``csv`` and ``xlsx``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    domains = [result_to_dict(r) for r in results]

    json_path = out / "results.json"
    document = {"run": info.to_dict(domains), "domains": domains}
    json_path.write_text(
        json.dumps(document, indent=1, ensure_ascii=False), encoding="utf-8"
    )

    csv_path, xlsx_path = write_summary(summary_frame(domains), out)
    log.info("wrote %s, %s, %s", json_path, csv_path, xlsx_path)
    return {"json": json_path, "csv": csv_path, "xlsx": xlsx_path}


def read_results(path: str | Path) -> dict[str, Any]:
    """Read a ``results.json`` (or the folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    return json.loads(path.read_text(encoding="utf-8"))
