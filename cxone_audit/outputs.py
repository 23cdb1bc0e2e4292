"""Write a run's results: ``results.json``, ``summary.csv``, ``summary.xlsx``.

While a run goes on, each finished row is appended to ``results.jsonl`` in
the output folder and flushed, so an interrupted run (Ctrl-C, a killed
process, a full disk) keeps every finished row, and ``--resume`` audits only
the rest. The final files are then written from that stream, in input
order, without holding every result in memory.

:func:`result_to_dict` is the one place a :class:`~.audit.DomainResult`
becomes plain data; the summary table, the report and the CLI all read that
form. Text in the summary files comes from strangers (DNS TXT records, the
input spreadsheet), so cells that a spreadsheet program would run as a
formula are neutralised with a leading apostrophe (OWASP "CSV injection").
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__
from .audit import STATUSES, DomainResult
from .errors import AuditError
from .regions import table_date

__all__ = [
    "ResultStream",
    "RunInfo",
    "neutralise_formula",
    "read_results",
    "result_to_dict",
    "finish_outputs",
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

    def to_dict(self, counts: Mapping[str, int]) -> dict[str, Any]:
        """The ``run`` object, given the count of rows per status."""
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
            "rows": sum(counts.values()),
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
    domains = [result_to_dict(r) for r in sorted(results, key=_row)]

    counts = Counter(d["status"] for d in domains)
    json_path = _write_json(out, info.to_dict(counts), domains)
    csv_path, xlsx_path = write_summary(summary_frame(domains), out)
    log.info("wrote %s, %s, %s", json_path, csv_path, xlsx_path)
    return {"json": json_path, "csv": csv_path, "xlsx": xlsx_path}


def _row(result: DomainResult) -> int:
    return result.row


def _write_json(
    out: Path, run: dict[str, Any], domains: Iterable[dict[str, Any]]
) -> Path:
    """Write ``results.json`` one domain at a time."""
    path = out / "results.json"
    with path.open("w", encoding="utf-8") as handle:
        handle.write('{"run": ' + json.dumps(run, ensure_ascii=False))
        handle.write(',\n"domains": [\n')
        for index, data in enumerate(domains):
            handle.write(",\n" if index else "")
            handle.write(json.dumps(data, ensure_ascii=False))
        handle.write("\n]}\n")
    return path


def read_results(path: str | Path) -> dict[str, Any]:
    """Read a ``results.json`` (or the folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    return json.loads(path.read_text(encoding="utf-8"))


STREAM_NAME = "results.jsonl"


def fingerprint(path: str | Path, default_region: str | None) -> str:
    """A digest of an input file and the options that shape its rows."""
    digest = hashlib.sha256(Path(path).read_bytes())
    digest.update(f"|region={default_region}".encode())
    return digest.hexdigest()


class ResultStream:
    """Results appended one JSON line at a time, readable after a crash.

    The first line is a header naming the input's fingerprint; each further
    line is one :func:`result_to_dict` object. A line cut short by a crash is
    dropped when the stream is opened again.

    Parameters
    ----------
    out_dir
        The run's output folder.
    input_id
        The input's :func:`fingerprint`.
    resume
        Keep the rows already in the stream (they must come from the same
        input); otherwise start afresh.
    """

    def __init__(self, out_dir: str | Path, input_id: str,
                 resume: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / STREAM_NAME
        self.input_id = input_id
        self.done: set[int] = set()
        self.counts: Counter[str] = Counter()

        if resume and self.path.exists():
            self._reopen()
        else:
            self._start()

    def _start(self) -> None:
        header = {"stream": "cxone-audit results", "input": self.input_id}
        with self.path.open("w", encoding="utf-8") as handle:
            handle.write(json.dumps(header) + "\n")

    def _reopen(self) -> None:
        lines = self.path.read_bytes().split(b"\n")
        header = _parse_line(lines[0])
        if header is None or header.get("input") != self.input_id:
            raise AuditError(
                f"{self.path} holds results of another input or options; "
                "use a new --out folder or run without --resume"
            )
        kept = [lines[0]]
        for line in lines[1:]:
            data = _parse_line(line)
            if data is not None and "row" in data:
                self.done.add(int(data["row"]))
                self.counts[data["status"]] += 1
                kept.append(line)
        # A line cut short by a crash is dropped, so that row runs again.
        self.path.write_bytes(b"\n".join(kept) + b"\n")
        log.info("resuming: %d rows already done in %s", len(self.done),
                 self.path)

    def append(self, result: DomainResult) -> None:
        """Write one finished row and flush it to disk."""
        line = json.dumps(result_to_dict(result), ensure_ascii=False)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
        self.done.add(result.row)
        self.counts[result.status] += 1

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every stored row, in input order, read back one at a time."""
        offsets: dict[int, int] = {}
        with self.path.open("rb") as handle:
            handle.readline()
            while True:
                offset, line = handle.tell(), handle.readline()
                if not line:
                    break
                data = _parse_line(line)
                if data is not None:
                    offsets.setdefault(int(data["row"]), offset)

            for row in sorted(offsets):
                handle.seek(offsets[row])
                yield json.loads(handle.readline())


def _parse_line(line: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def finish_outputs(stream: ResultStream, info: RunInfo) -> dict[str, Path]:
    """Write ``results.json`` and the summary files from a result stream.

    Rows are read back one at a time, so memory does not grow with the
    number of rows beyond the flat summary table.
    """
    out = stream.out_dir
    run = info.to_dict(stream.counts)

    json_path = _write_json(out, run, stream.rows())
    csv_path, xlsx_path = write_summary(summary_frame(stream.rows()), out)
    log.info("wrote %s, %s, %s", json_path, csv_path, xlsx_path)
    return {"json": json_path, "csv": csv_path, "xlsx": xlsx_path}
