"""Read a spreadsheet of domains into rows the audit can take.

A CSV or XLSX file needs a ``domain`` column; ``region`` is optional when a
default region is given. Every other column passes through to the outputs.
Cells are normalised and each change is noted: surrounding space, case, a
trailing dot, an e-mail address (its domain is kept), a URL (its host is
kept), an internationalised name (converted to its ASCII form, IDNA 2008
where the ``idna`` package is installed, else IDNA 2003).

Rows that cannot be audited are kept, with a reason: rows in = rows out, in
the same order.
"""

from __future__ import annotations

import codecs
import csv
import logging
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from .errors import InputFileError, RegionError
from .regions import Region, get_region

__all__ = [
    "InputRow",
    "find_cell",
    "normalise_domain",
    "read_rows",
    "read_table",
    "rows_from_domains",
    "rows_from_frame",
]

log = logging.getLogger(__name__)

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_SCHEMES = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


@dataclass(frozen=True)
class InputRow:
    """One input row, ready to audit or already judged unusable.

    Attributes
    ----------
    row
        1-based position among the data rows.
    raw
        The domain cell as written.
    domain
        The normalised name, or ``None``.
    region
        The row's region, or ``None``.
    notes
        What normalisation changed.
    error
        Why the row cannot be audited, or ``""``.
    columns
        The other cells of the row.
    """

    row: int
    raw: str
    domain: str | None
    region: Region | None
    notes: tuple[str, ...] = ()
    error: str = ""
    columns: dict[str, Any] = field(default_factory=dict)


def _to_ascii(name: str) -> str:
    try:
        import idna
    except ImportError:  # dnspython's fallback: IDNA 2003
        return name.encode("idna").decode("ascii")
    return idna.encode(name, uts46=True).decode("ascii")


def _strip_wrapping(text: str, notes: list[str]) -> str:
    stripped = text.strip().strip("<>\"'").strip()
    if stripped != text:
        notes.append("removed surrounding space or quotes")

    lowered = stripped.lower()
    if lowered.startswith("mailto:"):
        stripped = stripped[len("mailto:"):]
        notes.append("removed mailto:")

    if _SCHEMES.match(stripped) or stripped.lower().startswith("www."):
        host = urlsplit(stripped if "://" in stripped else "//" + stripped)
        stripped = host.hostname or ""
        notes.append("took the host of a URL")
    elif "@" in stripped:
        stripped = stripped.rsplit("@", 1)[1]
        notes.append("took the domain of an e-mail address")
    return stripped


def normalise_domain(text: str) -> tuple[str | None, list[str], str]:
    """Normalise one domain cell.

    Returns
    -------
    tuple
        ``(domain, notes, error)``: the name or ``None``, what changed,
        and why the cell is not a usable domain (``""`` when it is).
    """
    notes: list[str] = []
    name = _strip_wrapping(text, notes)

    if name.endswith("."):
        name = name.rstrip(".")
        notes.append("removed the trailing dot")
    if name != name.lower():
        name = name.lower()
        notes.append("lower-cased")
    if not name:
        return None, notes, "empty domain cell"

    if not name.isascii():
        try:
            name = _to_ascii(name)
        except (UnicodeError, ValueError) as exc:
            return None, notes, f"invalid internationalised name: {exc}"
        notes.append(f"converted to ASCII (IDNA): {name}")

    error = _name_error(name)
    return (None if error else name), notes, error


def _name_error(name: str) -> str:
    # RFC 1035 2.3.4 and RFC 1123 2.1: 253 characters, labels of 1-63.
    if len(name) > 253:
        return "name longer than 253 characters"
    labels = name.split(".")
    if len(labels) < 2:
        return f"{name!r} is not a domain name (no dot)"
    bad = [label for label in labels if not _LABEL.match(label)]
    if bad:
        return f"{name!r} is not a valid domain name (label {bad[0]!r})"
    if labels[-1].isdigit():
        return f"{name!r} looks like an IP address, not a domain"
    return ""


#: Encodings a CSV file is tried in, in order: UTF-8 (with or without a
#: byte-order mark), then Windows-1252, which Excel on Windows writes for
#: "CSV" in western European locales, then Latin-1, which decodes anything.
CSV_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")


def _encoding(path: Path) -> str:
    """The first of :data:`CSV_ENCODINGS` that decodes the whole file.

    A byte-order mark decides first: Excel's "Unicode text" is UTF-16.
    """
    raw = path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"

    for encoding in CSV_ENCODINGS:
        try:
            raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding != CSV_ENCODINGS[0]:
            log.info("%s is not UTF-8; read as %s", path.name, encoding)
        return encoding
    return CSV_ENCODINGS[-1]


def _delimiter(path: Path, encoding: str) -> str:
    """The delimiter of a CSV file's header line: , ; tab or |.

    Letters never count, so a one-column file (a plain list of domains)
    is read as one column rather than split at some letter of its header.
    """
    with path.open(encoding=encoding, errors="replace") as handle:
        header = handle.readline()
    try:
        return csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or XLSX file as text cells.

    Raises
    ------
    InputFileError
        If the file is missing, of another kind, or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"input file not found: {path}")

    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm") and not zipfile.is_zipfile(path):
        raise InputFileError(
            f"{path.name} is not an Excel workbook (.xlsx files are zip "
            "archives): save it from Excel as .xlsx, or if it is text, "
            "name it .csv"
        )
    try:
        if suffix in (".xlsx", ".xlsm"):
            frame = pd.read_excel(path, dtype=str, keep_default_na=False)
        elif suffix in (".csv", ".txt", ".tsv"):
            encoding = _encoding(path)
            frame = pd.read_csv(path, dtype=str, keep_default_na=False,
                                sep=_delimiter(path, encoding),
                                engine="python", encoding=encoding,
                                skip_blank_lines=False)
        else:
            raise InputFileError(
                f"{path.name}: use a .csv or .xlsx file (got {suffix or 'no'}"
                " extension)"
            )
    except InputFileError:
        raise
    except Exception as exc:  # pandas and openpyxl raise many kinds
        raise InputFileError(f"cannot read {path}: {exc}") from exc
    return frame


#: Headers read as the ``domain`` and ``region`` columns, in English and
#: Portuguese, compared without case, accents or surrounding space.
COLUMN_NAMES = {
    "domain": ("domain", "dominio"),
    "region": ("region", "regiao"),
}


def _header_key(header: object) -> str:
    """A header as compared: lower case, no accents, ``_`` for spaces."""
    text = " ".join(str(header).split()).lower().replace(" ", "_")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _find_column(frame: pd.DataFrame, name: str) -> str | None:
    for column in frame.columns:
        if _header_key(column) in COLUMN_NAMES[name]:
            return str(column)
    return None


def rows_from_frame(
    frame: pd.DataFrame, region: str | Region | None = None
) -> list[InputRow]:
    """Turn a table into rows, marking duplicates and unusable cells.

    Parameters
    ----------
    frame
        A table with a ``domain`` column (any case).
    region
        The region of rows whose ``region`` cell is empty or absent.

    Raises
    ------
    InputFileError
        If there is no ``domain`` column.
    RegionError
        If ``region`` itself is not a region.
    """
    domain_col = _find_column(frame, "domain")
    if domain_col is None:
        raise InputFileError(
            "the input needs a 'domain' column ('domínio' in Portuguese); "
            "found: "
            + ", ".join(str(c) for c in frame.columns)
        )
    region_col = _find_column(frame, "region")
    default = get_region(region) if region is not None else None

    rows = []
    seen: dict[tuple[str, str], int] = {}
    for index, record in enumerate(frame.to_dict("records"), start=1):
        row = _row(index, record, domain_col, region_col, default)
        key = (row.domain or "", row.region.code if row.region else "")
        if not row.error and key in seen:
            row = _with_error(row, f"duplicate of row {seen[key]}")
        elif not row.error:
            seen[key] = index
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value)


def _row(
    index: int,
    record: dict[str, Any],
    domain_col: str,
    region_col: str | None,
    default: Region | None,
) -> InputRow:
    raw = _cell(record.get(domain_col))
    columns = {str(k): _cell(v) for k, v in record.items()
               if k not in (domain_col, region_col)}
    domain, notes, error = normalise_domain(raw)

    region, region_error = _row_region(record, region_col, default)
    error = error or region_error
    return InputRow(index, raw, domain, region, tuple(notes), error, columns)


def _row_region(
    record: dict[str, Any], region_col: str | None, default: Region | None
) -> tuple[Region | None, str]:
    text = _cell(record.get(region_col)).strip() if region_col else ""
    if not text:
        if default is None:
            return None, "no region: fill the region column or pass --region"
        return default, ""
    try:
        return get_region(text), ""
    except RegionError as exc:
        return None, str(exc)


def find_cell(columns: Mapping[str, Any], *names: str) -> str | None:
    """The cell of the first column named like one of ``names``.

    Headers match loosely: case, accents and surrounding space are
    ignored, and a space inside counts as an underscore (``SES verified``
    is ``ses_verified``).

    Parameters
    ----------
    columns
        A row's pass-through cells (:attr:`InputRow.columns`).
    names
        The wanted names, lower case with underscores.

    Returns
    -------
    str or None
        The cell as text; ``None`` when no column matches or the cell is
        ``None``.
    """
    for key, value in columns.items():
        if _header_key(key) in names:
            return None if value is None else str(value)
    return None


def _with_error(row: InputRow, error: str) -> InputRow:
    return InputRow(row.row, row.raw, row.domain, row.region, row.notes,
                    error, row.columns)


def read_rows(
    path: str | Path, region: str | Region | None = None
) -> list[InputRow]:
    """Read a spreadsheet file into rows (see :func:`rows_from_frame`)."""
    rows = rows_from_frame(read_table(path), region)
    log.info("read %d rows from %s", len(rows), path)
    return rows


def rows_from_domains(
    domains: Iterable[str], region: str | Region
) -> list[InputRow]:
    """Rows for a plain list of domains, all in one region."""
    frame = pd.DataFrame({"domain": list(domains)})
    return rows_from_frame(frame, region)


def iter_auditable(rows: Iterable[InputRow]) -> Iterator[InputRow]:
    """The rows that can be audited."""
    return (row for row in rows if not row.error)
