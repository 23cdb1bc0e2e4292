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

import contextlib
import csv
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter

from . import __version__
from .audit import STATUSES, DomainResult
from .errors import AuditError
from .regions import table_date

__all__ = [
    "ResultStream",
    "RunInfo",
    "ALLOWLIST_COLUMN",
    "SUMMARY_COLUMNS",
    "neutralise_formula",
    "read_results",
    "result_to_dict",
    "finish_outputs",
    "sheet_cell",
    "summary_columns",
    "summary_frame",
    "summary_row",
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
    """What a run was: when, over which DNS, with which tables.

    ``allowlist`` names the run's own allowlist file, when it had one; the
    ``run`` object then holds it, and only then. ``kept`` counts the rows a
    resumed run found already done: ``started``, the elapsed time and the
    DNS counters then describe the resumed part alone, and ``run`` says so
    with ``rows_kept_from_earlier_run``.
    """

    resolver: str
    input: str = ""
    default_region: str | None = None
    allowlist: str | None = None
    kept: int = 0
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished: datetime | None = None
    dns: dict[str, int] = field(default_factory=dict)

    def to_dict(self, counts: Mapping[str, int]) -> dict[str, Any]:
        """The ``run`` object, given the count of rows per status."""
        finished = self.finished or datetime.now(UTC)
        run: dict[str, Any] = {
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
        if self.allowlist is not None:
            run["allowlist"] = self.allowlist
        if self.kept:
            run["rows_kept_from_earlier_run"] = self.kept
        return run


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
        # A row that was never audited has none of these; the keys stay,
        # so every domain object has the same shape.
        **dict.fromkeys(_AUDIT_SECTIONS),
        "findings": [],
    }
    data.update(result.extra)
    return data


#: Sections an audit adds to a result (``None`` when it never ran).
_AUDIT_SECTIONS = ("proposal", "dmarc", "mx", "ses")


def neutralise_formula(value: Any) -> Any:
    """Prefix text a spreadsheet would evaluate with ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _visible_controls(text: str) -> str:
    r"""Control characters that XML 1.0 forbids, written as ``\xNN``.

    A TXT record may hold any octet (RFC 1035 3.3.14); an XLSX cell cannot
    hold most control characters, so they are shown instead of failing the
    whole file. CSV gets the same text so that both files agree.
    """
    return ILLEGAL_CHARACTERS_RE.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def sheet_cell(value: Any) -> Any:
    """A summary cell made safe for a spreadsheet program."""
    if isinstance(value, str):
        return neutralise_formula(_visible_controls(value))
    return value


#: The summary's own columns, in order; the input's other columns follow.
SUMMARY_COLUMNS = (
    "row", "input", "domain", "region", "status", "reason", "spf_record",
    "dns_lookups", "void_lookups", "ips_not_passing", "notes", "findings",
    "proposed_record",
)

#: The column of the allowlist IPs a row's current allowlist lacks; it
#: follows :data:`SUMMARY_COLUMNS` only in runs where an allowlist applied.
ALLOWLIST_COLUMN = "allowlist_missing"


def summary_row(data: Mapping[str, Any]) -> dict[str, Any]:
    """The flat summary columns of one result (its ``result_to_dict``)."""
    failing = [f"{v['ip']} {v['result']}" for v in data["ips"]
               if v["result"] != "pass"]
    skipped = data["status"] == "input-error"
    row = {
        "row": data["row"],
        "input": data["input"],
        "domain": data["domain"] or "",
        "region": data["region"] or "",
        "status": data["status"],
        "reason": data["reason"],
        "spf_record": data["spf"]["record"] or "",
        # A row never audited counted nothing: empty, not 0.
        "dns_lookups": "" if skipped else data["spf"]["dns_lookups"],
        "void_lookups": "" if skipped else data["spf"]["void_lookups"],
        "ips_not_passing": "; ".join(failing),
        "notes": "; ".join(data["notes"]),
        **_extra_columns(data),
    }
    row.update({_input_column(k): v for k, v in data["columns"].items()})
    return row


def _input_column(name: str) -> str:
    """The summary heading of an input column (``in:`` when names clash)."""
    clash = name in SUMMARY_COLUMNS or name == ALLOWLIST_COLUMN
    return f"in:{name}" if clash else name


def summary_columns(
    input_columns: Iterable[str], allowlist: bool = False
) -> list[str]:
    """Every summary heading: the kit's, then the input's own columns.

    Parameters
    ----------
    input_columns
        The input's pass-through column names.
    allowlist
        Whether an allowlist applied to any row of the run; then
        :data:`ALLOWLIST_COLUMN` follows the kit's columns.
    """
    kit = [*SUMMARY_COLUMNS, *([ALLOWLIST_COLUMN] if allowlist else [])]
    extra = dict.fromkeys(_input_column(c) for c in input_columns)
    return [*kit, *extra]


def summary_frame(results: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per input row: the flat columns of the summary files."""
    rows = [summary_row(data) for data in results]
    seen = [k for row in rows for k in row]
    allowlist = ALLOWLIST_COLUMN in seen
    return pd.DataFrame(rows, columns=summary_columns(
        (k for k in seen if k not in SUMMARY_COLUMNS
         and k != ALLOWLIST_COLUMN), allowlist))


def _extra_columns(data: Mapping[str, Any]) -> dict[str, Any]:
    """Flat columns for the optional checks (empty when a row has none).

    :data:`ALLOWLIST_COLUMN` is there only for a row with an allowlist
    section: the missing IPs joined with ``; ``, empty when none is
    missing or the file could not be read (the findings say which).
    """
    findings = data.get("findings") or ()
    proposal = data.get("proposal") or {}
    columns = {
        "findings": "; ".join(
            f"{f['code']} ({f['severity']})" for f in findings),
        "proposed_record": proposal.get("record") or "",
    }
    if "allowlist" in data:
        missing = (data["allowlist"] or {}).get("missing") or ()
        columns[ALLOWLIST_COLUMN] = "; ".join(missing)
    return columns


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it when all went well.

    Readers see the old file or the new one, never half of either: a crash,
    a full disk or Ctrl-C while writing leaves ``path`` as it was.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_summary(
    results: Iterable[Mapping[str, Any]],
    out_dir: Path,
    input_columns: Iterable[str] = (),
    allowlist: bool = False,
) -> list[Path]:
    """Write ``summary.csv`` and ``summary.xlsx``, one row at a time.

    Parameters
    ----------
    results
        Result dicts (:func:`result_to_dict`) in input order; read once.
    out_dir
        Where the two files go.
    input_columns
        The input's pass-through column names, which follow the kit's.
    allowlist
        Whether an allowlist applied to any row: adds
        :data:`ALLOWLIST_COLUMN`.

    Every cell goes through :func:`sheet_cell`. The workbook is written in
    openpyxl's write-only mode, so memory does not grow with the rows.
    """
    columns = summary_columns(input_columns, allowlist)
    csv_path, xlsx_path = out_dir / "summary.csv", out_dir / "summary.xlsx"
    book = Workbook(write_only=True)
    sheet = book.create_sheet("summary")
    _lay_out(sheet, columns)

    rows = 0
    # UTF-8 with a byte-order mark: Excel reads accents right only then.
    with (replacing(csv_path) as csv_temporary,
          replacing(xlsx_path) as xlsx_temporary):
        with csv_temporary.open("w", encoding="utf-8-sig",
                                newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            sheet.append(columns)
            for data in results:
                row = summary_row(data)
                cells = [sheet_cell(row.get(c, "")) for c in columns]
                writer.writerow(cells)
                sheet.append(cells)
                rows += 1

        last = get_column_letter(len(columns))
        sheet.auto_filter.ref = f"A1:{last}{rows + 1}"
        book.save(xlsx_temporary)
    return [csv_path, xlsx_path]


#: Widths (in characters) of the summary sheet's wide columns.
_WIDTHS = {"input": 28, "domain": 28, "reason": 48, "spf_record": 56,
           "ips_not_passing": 32, "notes": 32, "findings": 48,
           "proposed_record": 56}


def _lay_out(sheet: Any, columns: Sequence[str]) -> None:
    """Headings frozen, readable widths: set before the first row."""
    sheet.freeze_panes = "A2"
    for number, name in enumerate(columns, start=1):
        width = _WIDTHS.get(name, 14)
        sheet.column_dimensions[get_column_letter(number)].width = width


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
    columns = (c for d in domains for c in d["columns"])
    allowlist = any("allowlist" in d for d in domains)
    csv_path, xlsx_path = write_summary(domains, out, columns, allowlist)
    log.info("wrote %s, %s, %s", json_path, csv_path, xlsx_path)
    return {"json": json_path, "csv": csv_path, "xlsx": xlsx_path}


def _row(result: DomainResult) -> int:
    return result.row


def _write_json(
    out: Path, run: dict[str, Any], domains: Iterable[dict[str, Any]]
) -> Path:
    """Write ``results.json`` one domain at a time."""
    path = out / "results.json"
    with replacing(path) as temporary, \
            temporary.open("w", encoding="utf-8") as handle:
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

#: The HTML report that :mod:`cxone_audit.report` renders into the folder.
REPORT_NAME = "report.html"


def fingerprint(
    path: str | Path,
    default_region: str | None,
    allowlist: Sequence[str] | None = None,
    resolver: str | None = None,
) -> str:
    """A digest of an input file and the options that shape its rows.

    ``allowlist`` is the run's own allowlist entries, when it has one. The
    files an ``allowlist`` column names are not read here: the input's
    bytes cover their names, not their content. ``resolver`` is where the
    answers come from (:meth:`~.resolver.Resolver.describe`), so a resumed
    run cannot mix the verdicts of two sources of DNS data.
    """
    digest = hashlib.sha256(Path(path).read_bytes())
    digest.update(f"|region={default_region}".encode())
    if allowlist is not None:
        digest.update(("|allowlist=" + "\n".join(allowlist)).encode())
    if resolver is not None:
        digest.update(f"|resolver={resolver}".encode())
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
        # The other outputs are rewritten when the run ends; an earlier
        # run's report would not be, and would sit beside them unnoticed.
        (self.out_dir / REPORT_NAME).unlink(missing_ok=True)
        self.path = self.out_dir / STREAM_NAME
        self.input_id = input_id
        self.done: set[int] = set()
        self.counts: Counter[str] = Counter()
        #: The input's pass-through column names seen so far, in order.
        self.columns: dict[str, None] = {}
        #: Whether a row stored so far has an allowlist section.
        self.allowlist = False

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
                f"{self.path} holds results of another input or options "
                "(input file, --region, --allowlist, --nameserver or "
                "--zone-file); "
                "use a new --out folder or run without --resume"
            )
        kept = [lines[0]]
        for line in lines[1:]:
            data = _parse_line(line)
            if data is not None and "row" in data:
                self.done.add(int(data["row"]))
                self.counts[data["status"]] += 1
                self.columns.update(dict.fromkeys(data.get("columns", ())))
                self.allowlist |= "allowlist" in data
                kept.append(line)
        # A line cut short by a crash is dropped, so that row runs again;
        # the stream is replaced whole, so a second crash loses nothing.
        with replacing(self.path) as temporary:
            temporary.write_bytes(b"\n".join(kept) + b"\n")
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
        self.columns.update(dict.fromkeys(result.columns))
        self.allowlist |= "allowlist" in result.extra

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

    Rows are read back one at a time for each file, so memory does not
    grow with the number of rows.
    """
    out = stream.out_dir
    run = info.to_dict(stream.counts)

    json_path = _write_json(out, run, stream.rows())
    csv_path, xlsx_path = write_summary(stream.rows(), out, stream.columns,
                                        stream.allowlist)
    log.info("wrote %s, %s, %s", json_path, csv_path, xlsx_path)
    return {"json": json_path, "csv": csv_path, "xlsx": xlsx_path}
