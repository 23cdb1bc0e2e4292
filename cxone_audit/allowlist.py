"""Allowlists: check that a mail server accepts a region's CXone e-mail.

CXone system e-mail (password resets, chat transcripts, reports) comes from
the region's *allowlist IPs*; a customer's mail server or gateway should
accept them. This module reads an export of the current allowlist,
compares it with the region's table, and writes what to add in a few forms.

* :func:`read_allowlist` reads a text or CSV export into entry texts.
* :func:`parse_entry` reads one entry: an address, a CIDR network, a range
  ``a-b`` (as Exchange Online accepts), a Postfix access-table line
  (``203.0.113.0/24  OK``) or a partial address ``203.0.113``.
* :func:`check_allowlist` says, for each allowlist IP of the region, whether
  it is present, covered by a wider entry, or missing, and lists the
  entries that belong to other regions, that are IPv6, or that could not be
  read (kept with the reason, never dropped).
* :func:`format_additions` writes the missing IPs as a plain list, a Postfix
  CIDR access table or an Exchange Online PowerShell command.
* :func:`load_allowlist` and :func:`allowlist_section` serve the audit of a
  domain: a file read once for many rows (:class:`CurrentAllowlist`, which
  holds the reason instead of raising when it cannot be read), and the
  ``allowlist`` section of one domain's result.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import ipaddress
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputFileError
from .regions import REGION_CODES, Region, allowlist_ips, get_region

__all__ = [
    "ADDITION_STYLES",
    "AllowlistResult",
    "CurrentAllowlist",
    "Entry",
    "IpCoverage",
    "OtherRegionEntry",
    "UnreadEntry",
    "additions_text",
    "allowlist_section",
    "as_current",
    "check_allowlist",
    "format_additions",
    "load_allowlist",
    "parse_entry",
    "read_allowlist",
    "summarise",
]

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The forms :func:`format_additions` writes.
ADDITION_STYLES = ("list", "postfix", "exchange")

#: Entries wider than this (IPv4 prefix length) get a warning when they
#: cover a CXone IP: they let much more than CXone through.
WIDE_PREFIX = 16

# Header words that name the column holding addresses, best first.
_COLUMN_WORDS = ("cidr", "ip", "ips", "iprange", "network", "networks",
                 "subnet", "range", "ranges", "address", "addresses")

# Postfix access(5) actions that refuse or delay rather than accept.
_DENY_ACTIONS = frozenset({"REJECT", "DEFER", "DEFER_IF_PERMIT",
                           "DEFER_IF_REJECT", "DISCARD", "HOLD",
                           "BCC", "FILTER", "REDIRECT"})
_DENY_CODE = re.compile(r"^[45]\d\d\b")

_RANGE = re.compile(r"^(?P<start>[0-9A-Fa-f.:]+)\s*-\s*(?P<end>[0-9A-Fa-f.:]+)"
                    r"(?P<rest>(?:[\s,;].*)?)$")
_PARTIAL = re.compile(r"^\d{1,3}(?:\.\d{1,3}){0,2}(?:\.\*){0,3}\.?$")
_SEPARATORS = re.compile(r"[\s,;]+")
_BRACKETED = re.compile(r"^\[(?P<address>[0-9A-Fa-f:.]+)\](?P<prefix>/\d+)?$")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


@dataclass(frozen=True)
class Entry:
    """One allowlist entry, read.

    Attributes
    ----------
    text
        The entry as given.
    networks
        The networks it stands for (a range ``a-b`` may need several);
        empty when it could not be read.
    action
        The word after the address in a Postfix-style table (``OK``,
        ``REJECT``...), upper case, or ``None``.
    note
        How the entry was interpreted, when that is not obvious.
    reason
        Why the entry could not be read (``networks`` is then empty).
    """

    text: str
    networks: tuple[Network, ...] = ()
    action: str | None = None
    note: str = ""
    reason: str = ""

    @property
    def allows(self) -> bool:
        """False for Postfix-style lines that refuse or delay mail."""
        if self.action is None:
            return True
        return (self.action not in _DENY_ACTIONS
                and not _DENY_CODE.match(self.action))

    @property
    def ipv6(self) -> bool:
        """True when every network of the entry is IPv6."""
        return bool(self.networks) and all(n.version == 6
                                           for n in self.networks)


@dataclass(frozen=True)
class IpCoverage:
    """How the current allowlist handles one CXone allowlist IP.

    Attributes
    ----------
    ip
        The CXone allowlist IP.
    status
        ``present`` (listed as itself), ``covered`` (inside a wider entry)
        or ``missing``.
    entry
        The entry that lists or covers the IP, as given.
    network
        The covering network, for ``covered``.
    refused_by
        For ``missing``: a line that refuses the IP before any line
        accepts it (Postfix tables use the first line that matches).
    """

    ip: str
    status: str
    entry: str | None = None
    network: str | None = None
    refused_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form."""
        return {"ip": self.ip, "status": self.status, "entry": self.entry,
                "network": self.network, "refused_by": self.refused_by}


@dataclass(frozen=True)
class OtherRegionEntry:
    """An entry that lists or covers CXone IPs of other regions.

    Attributes
    ----------
    entry
        The entry as given.
    regions
        The codes of the regions concerned.
    ips
        The other regions' CXone allowlist IPs the entry takes in.
    """

    entry: str
    regions: tuple[str, ...]
    ips: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form."""
        return {"entry": self.entry, "regions": list(self.regions),
                "ips": list(self.ips)}


@dataclass(frozen=True)
class UnreadEntry:
    """An entry left out of the comparison, and why."""

    entry: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form."""
        return {"entry": self.entry, "reason": self.reason}


@dataclass(frozen=True)
class AllowlistResult:
    """A current allowlist compared with one region's allowlist IPs.

    Attributes
    ----------
    region
        The CXone region.
    entries
        How many entries were given.
    ips
        One :class:`IpCoverage` per allowlist IP of the region, in the
        order of CXone's table.
    other_region
        Entries that hold CXone IPs of other regions.
    unparsed
        Entries that are not addresses, networks or ranges.
    ignored
        Entries that were read but do not allow mail (Postfix ``REJECT``...).
    ipv6
        IPv6 entries: accepted, but CXone's tables are IPv4 only.
    warnings
        Entries that let far more than CXone through, and readings that
        were not obvious.
    """

    region: Region
    entries: int
    ips: tuple[IpCoverage, ...]
    other_region: tuple[OtherRegionEntry, ...] = ()
    unparsed: tuple[UnreadEntry, ...] = ()
    ignored: tuple[UnreadEntry, ...] = ()
    ipv6: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def _with(self, status: str) -> list[str]:
        return [c.ip for c in self.ips if c.status == status]

    @property
    def present(self) -> list[str]:
        """Region IPs listed as themselves."""
        return self._with("present")

    @property
    def covered(self) -> list[str]:
        """Region IPs inside a wider entry."""
        return self._with("covered")

    @property
    def missing(self) -> list[str]:
        """Region IPs the allowlist does not accept."""
        return self._with("missing")

    @property
    def complete(self) -> bool:
        """True when every allowlist IP of the region is accepted."""
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form of the result."""
        return {
            "region": self.region.code,
            "region_name": self.region.name,
            "entries": self.entries,
            "complete": self.complete,
            "present": self.present,
            "covered": [c.to_dict() for c in self.ips
                        if c.status == "covered"],
            "missing": self.missing,
            "ips": [c.to_dict() for c in self.ips],
            "other_region": [e.to_dict() for e in self.other_region],
            "unparsed": [e.to_dict() for e in self.unparsed],
            "ignored": [e.to_dict() for e in self.ignored],
            "ipv6": list(self.ipv6),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class CurrentAllowlist:
    """A mail server's current allowlist as an audit takes it.

    Attributes
    ----------
    file
        Where the entries came from, as the user wrote it (a command-line
        argument or a spreadsheet cell); ``None`` when they were given
        as a list.
    entries
        The entry texts (:func:`read_allowlist`); empty when the file
        could not be read.
    error
        Why the file could not be read; ``""`` when it was.
    """

    file: str | None
    entries: tuple[str, ...] = ()
    error: str = ""


def as_current(
    allowlist: CurrentAllowlist | Sequence[str] | None,
) -> CurrentAllowlist | None:
    """Take entry texts or a :class:`CurrentAllowlist` as the latter.

    Raises
    ------
    TypeError
        If ``allowlist`` is a single string (a file name, most likely).
    """
    if allowlist is None or isinstance(allowlist, CurrentAllowlist):
        return allowlist
    if isinstance(allowlist, str):
        raise TypeError("allowlist takes entries, not a file name: read the "
                        "file with read_allowlist or load_allowlist")
    return CurrentAllowlist(None, tuple(allowlist))


# Reading a file ---------------------------------------------------------


def read_allowlist(path: str | Path) -> list[str]:
    """Read the entries of an allowlist export.

    A text file has one entry per line; a CSV file (or a text file whose
    first line is a header) has a column named like ``ip``, ``address``,
    ``cidr``, ``range`` or ``network``. Blank lines and lines starting with
    ``#`` or ``//`` are skipped, and so is a comment after an entry. Text
    after the address (a description, a Postfix action) is kept: it is
    read by :func:`parse_entry`. UTF-8, UTF-16 with a byte-order mark (as
    Windows PowerShell writes) and Latin-1 files are read.

    Raises
    ------
    InputFileError
        If the file cannot be opened or decoded, or a CSV file has no
        address column.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputFileError(
            f"cannot read allowlist file {path}: {exc.strerror or exc}"
        ) from exc
    except ValueError as exc:  # a NUL byte in the name
        raise InputFileError(
            f"cannot read allowlist file {path!r}: {exc}") from exc

    lines = [line for line in _decode(raw, path).splitlines()
             if not _is_comment(line)]
    header = next((line for line in lines if line.strip()), "")
    if path.suffix.lower() in (".csv", ".tsv") or _looks_like_header(header):
        return _read_csv(lines, path)
    entries = (" ".join(_strip_comment(line).split()) for line in lines)
    return [e for e in entries if e]


def load_allowlist(
    path: str | Path, written: str | None = None
) -> CurrentAllowlist:
    """Read an allowlist export for an audit; never raises for the file.

    Parameters
    ----------
    path
        The file to read.
    written
        How the user wrote the file's name, kept as
        :attr:`CurrentAllowlist.file`; ``str(path)`` by default.

    Returns
    -------
    CurrentAllowlist
        The entries, or the reason the file could not be read (what
        :func:`read_allowlist` would raise), so that one bad file costs
        the rows that name it their allowlist comparison, not their audit.
    """
    file = str(path) if written is None else written
    try:
        entries = read_allowlist(path)
    except InputFileError as exc:
        log.warning("%s", exc)
        return CurrentAllowlist(file, error=str(exc))
    log.info("allowlist %s: %d entries", file, len(entries))
    return CurrentAllowlist(file, tuple(entries))


def _decode(raw: bytes, path: Path) -> str:
    # Windows PowerShell's Out-File writes UTF-16 with a byte-order mark.
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ["utf-16"]
    elif b"\0" in raw[:4096]:
        # Text has no NUL bytes; a workbook (a zip), a PDF or a program do.
        raise InputFileError(
            f"allowlist file {path} is not text: export the allowlist as "
            "a text or CSV file (one entry per line, or an address column)"
        )
    else:
        encodings = ["utf-8-sig", "latin-1"]
    for encoding in encodings:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputFileError(f"cannot decode allowlist file {path}")


def _is_comment(line: str) -> bool:
    text = line.strip()
    return text.startswith(("#", "//"))


def _strip_comment(line: str) -> str:
    text = re.split(r"\s(?:#|//)", line, maxsplit=1)[0]
    return text.strip()


def _header_words(cell: str) -> list[str]:
    words = _CAMEL.findall(cell.strip().strip('"'))
    return [w.lower() for w in words]


def _column_rank(cell: str) -> int | None:
    words = _header_words(cell)
    ranks = [_COLUMN_WORDS.index(w) for w in words if w in _COLUMN_WORDS]
    return min(ranks) if ranks else None


def _looks_like_header(line: str) -> bool:
    cells = [c.strip().strip('"') for c in re.split(r"[,;\t]", line)]
    if any(_parse_address(c) is not None for c in cells):
        return False
    return any(_column_rank(c) is not None for c in cells)


def _read_csv(lines: list[str], path: Path) -> list[str]:
    text = "\n".join(line for line in lines if line.strip())
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    try:
        rows = list(csv.reader(io.StringIO(text), dialect))
    except csv.Error as exc:  # a field over the csv module's size limit
        raise InputFileError(f"cannot read allowlist file {path}: {exc}") from exc
    if not rows:
        return []

    column = _pick_column(rows[0], rows[1:])
    if column is None:
        raise InputFileError(
            f"allowlist file {path} has no column named ip, address, cidr, "
            f"range or network (columns: {', '.join(rows[0])})"
        )

    entries: list[str] = []
    for row in rows[1:]:
        cell = row[column].strip() if column < len(row) else ""
        if cell:
            entries.extend(_split_cell(cell))
    return entries


def _pick_column(header: list[str], rows: list[list[str]]) -> int | None:
    # Among the columns a header names like addresses, the one whose cells
    # read as addresses most often; the header word breaks ties.
    candidates = [(i, _column_rank(c)) for i, c in enumerate(header)]
    named = [(i, rank) for i, rank in candidates if rank is not None]
    if not named:
        return None

    def score(item: tuple[int, int]) -> tuple[int, int]:
        index, rank = item
        readable = sum(1 for row in rows if index < len(row)
                       and parse_entry(row[index]).networks)
        return -readable, rank

    return min(named, key=score)[0]


def _split_cell(cell: str) -> list[str]:
    # A cell may hold several entries ("a, b" or one per line); split it
    # only when every piece is an address, so descriptions stay whole.
    pieces = [p for p in _SEPARATORS.split(cell) if p]
    if len(pieces) > 1 and all(_parse_address(p) for p in pieces):
        return pieces
    return [cell]


# Reading an entry -------------------------------------------------------


def parse_entry(text: str) -> Entry:
    """Read one allowlist entry.

    Accepts ``203.0.113.5``, ``203.0.113.0/24``, ``203.0.113.0/255.255.255.0``,
    ranges ``203.0.113.1-203.0.113.20``, partial addresses ``203.0.113``
    and ``203.0.113.*`` (the /24), IPv6, and any of them followed by a
    description or a Postfix action (``OK``, ``REJECT``...). Never raises.
    """
    original = text
    text = _strip_comment(text).strip().strip("\"'").strip()
    if not text:
        return Entry(original, reason="empty entry")

    ranged = _RANGE.match(text)
    if ranged and _is_address(ranged["start"]) and _is_address(ranged["end"]):
        return _range_entry(original, ranged)

    parts = _SEPARATORS.split(text, maxsplit=1)
    token = parts[0].strip("\"'")
    rest = parts[1] if len(parts) > 1 else ""
    found = _parse_address(token)
    if found is None:
        return Entry(original, reason=_why_unreadable(token))

    network, note = found
    return Entry(original, (network,), action=_action(rest), note=note)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _parse_address(token: str) -> tuple[Network, str] | None:
    # Postfix cidr_table(5) writes IPv6 networks as [2001:db8::]/32.
    bracketed = _BRACKETED.match(token)
    if bracketed:
        token = bracketed["address"] + (bracketed["prefix"] or "")

    # A network given with host bits set (203.0.113.5/24) is read as the
    # network, as most mail servers do, and noted.
    try:
        return ipaddress.ip_network(token, strict=True), ""
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(token, strict=False)
    except ValueError:
        return _partial(token)
    return network, f"{token} has host bits set: read as {network}"


def _partial(token: str) -> tuple[Network, str] | None:
    # Postfix access tables (and some gateways) take "203.0.113" or
    # "203.0.113.*" for the whole /24.
    if not _PARTIAL.match(token) or "." not in token.strip("."):
        return None
    octets = [o for o in token.strip(".").split(".") if o != "*"]
    if any(int(o) > 255 for o in octets):
        return None
    prefix = 8 * len(octets)
    address = ".".join(octets + ["0"] * (4 - len(octets)))
    network = ipaddress.ip_network(f"{address}/{prefix}")
    return network, f"{token} read as the network {network}"


def _range_entry(original: str, match: re.Match[str]) -> Entry:
    try:
        start = ipaddress.ip_address(match["start"])
        end = ipaddress.ip_address(match["end"])
        networks = tuple(ipaddress.summarize_address_range(start, end))
    except (ValueError, TypeError) as exc:
        return Entry(original, reason=f"not a valid address range: {exc}")
    return Entry(original, networks, action=_action(match["rest"]))


def _action(rest: str) -> str | None:
    words = rest.strip(" ,;\t").split()
    if not words:
        return None
    word = words[0].strip("\"'").upper()
    if word in _DENY_ACTIONS or _DENY_CODE.match(word) or word in (
            "OK", "PERMIT", "ACCEPT", "ALLOW", "DUNNO", "RELAY"):
        return word
    return None  # a description, not an action


def _why_unreadable(token: str) -> str:
    if "@" in token:
        return "an e-mail address, not an IP address or network"
    if re.fullmatch(r"[\d.]+", token) and any(
            len(o) > 1 and o.startswith("0") for o in token.split(".")):
        return ("leading zeros are ambiguous (octal or decimal?): write "
                "the address without them")
    if re.fullmatch(r"[\d./]+", token):
        return ("not a valid IPv4 address or network (four numbers 0-255, "
                "and a prefix length 0-32)")
    if re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", token):
        return "a host or domain name, not an IP address or network"
    return "not an IP address, network or range"


# Comparing --------------------------------------------------------------


def check_allowlist(
    entries: Iterable[str], region: str | Region
) -> AllowlistResult:
    """Compare allowlist entries with a region's CXone allowlist IPs.

    Parameters
    ----------
    entries
        Entry texts, for example from :func:`read_allowlist`; empty when
        there is no current allowlist (then every IP is missing).
    region
        The CXone region (a code, a name or a :class:`~.regions.Region`).

    Raises
    ------
    RegionError
        If the region is not one of CXone's.
    """
    region = get_region(region)
    parsed = [parse_entry(text) for text in entries]
    unparsed = tuple(UnreadEntry(e.text, e.reason)
                     for e in parsed if not e.networks)
    ignored = tuple(
        UnreadEntry(e.text, f"action {e.action}: the line refuses or "
                    "diverts mail rather than accepting it")
        for e in parsed if e.networks and not e.allows
    )
    readable = [e for e in parsed if e.networks]
    usable = [e for e in readable if e.allows]

    result = AllowlistResult(
        region=region,
        entries=len(parsed),
        ips=tuple(_coverage(ip, readable) for ip in allowlist_ips(region)),
        other_region=tuple(_other_regions(usable, region)),
        unparsed=unparsed,
        ignored=ignored,
        ipv6=tuple(e.text for e in usable if e.ipv6),
        warnings=tuple(_warnings(usable, region)),
    )
    log.info("allowlist %s: %d present, %d covered, %d missing",
             region.code, len(result.present), len(result.covered),
             len(result.missing))
    return result


def allowlist_section(
    current: CurrentAllowlist, region: str | Region
) -> dict[str, Any]:
    """The ``allowlist`` section of a domain's result.

    Parameters
    ----------
    current
        The current allowlist that applies to the domain.
    region
        The domain's CXone region.

    Returns
    -------
    dict
        ``{"file", **AllowlistResult.to_dict()}`` when the entries were
        read, ``{"file", "error"}`` when the file could not be.
    """
    if current.error:
        return {"file": current.file, "error": current.error}
    result = _checked(tuple(current.entries), get_region(region).code)
    return {"file": current.file, **result.to_dict()}


@functools.lru_cache(maxsize=64)
def _checked(entries: tuple[str, ...], region: str) -> AllowlistResult:
    """:func:`check_allowlist`, once per file and region of a batch.

    Every row that takes the run's allowlist would otherwise parse it again.
    """
    return check_allowlist(entries, region)


def _coverage(ip: str, entries: Sequence[Entry]) -> IpCoverage:
    address = ipaddress.ip_address(ip)
    matching = [(e, n) for e in entries for n in e.networks if address in n]

    # Postfix cidr_table(5): lines are tried in file order and the first
    # match decides, so a refusing line before every accepting one wins.
    if matching and not matching[0][0].allows:
        return IpCoverage(ip, "missing", refused_by=matching[0][0].text)

    allowing = [(e, n) for e, n in matching if e.allows]
    exact = [e for e, n in allowing if n.num_addresses == 1]
    if exact:
        return IpCoverage(ip, "present", exact[0].text)
    if not allowing:
        return IpCoverage(ip, "missing")
    entry, network = max(allowing, key=lambda pair: pair[1].prefixlen)
    return IpCoverage(ip, "covered", entry.text, str(network))


def _other_regions(
    entries: Sequence[Entry], region: Region
) -> list[OtherRegionEntry]:
    others = {code: [ipaddress.ip_address(ip) for ip in allowlist_ips(code)]
              for code in REGION_CODES if code != region.code}
    found: list[OtherRegionEntry] = []
    for entry in entries:
        hits = [(code, str(ip)) for code, ips in others.items() for ip in ips
                if any(ip in n for n in entry.networks)]
        if hits:
            codes = tuple(dict.fromkeys(code for code, _ in hits))
            found.append(OtherRegionEntry(entry.text, codes,
                                          tuple(ip for _, ip in hits)))
    return found


def _warnings(entries: Sequence[Entry], region: Region) -> list[str]:
    wanted = [ipaddress.ip_address(ip) for ip in allowlist_ips(region)]
    warnings: list[str] = []
    for entry in entries:
        if entry.note:
            warnings.append(f"{entry.text!r}: {entry.note}")
        for network in entry.networks:
            wide = network.version == 4 and network.prefixlen < WIDE_PREFIX
            if wide and any(ip in network for ip in wanted):
                warnings.append(
                    f"{entry.text!r} covers {network.num_addresses:,} "
                    "addresses: it accepts far more than CXone; listing "
                    "the CXone IPs alone is safer"
                )
    return warnings


# Writing additions ------------------------------------------------------


def format_additions(
    missing_ips: Sequence[str], style: str, region: str | Region | None = None
) -> str:
    """Write the IPs to add in one of :data:`ADDITION_STYLES`.

    Parameters
    ----------
    missing_ips
        The IPs to add, normally :attr:`AllowlistResult.missing`.
    style
        ``"list"``: one IP per line. ``"postfix"``: a Postfix CIDR access
        table, ``ip/32  OK`` lines under a comment header. ``"exchange"``:
        an Exchange Online PowerShell command that adds the IPs to the
        default connection filter policy's IP Allow List.
    region
        Named in the Postfix header, when given.

    Returns
    -------
    str
        The text, ending with a newline; ``""`` when nothing is missing.
    """
    if style not in ADDITION_STYLES:
        raise ValueError(f"unknown style {style!r}; use "
                         + ", ".join(ADDITION_STYLES))
    if not missing_ips:
        return ""
    ips = [str(ipaddress.IPv4Address(ip)) for ip in missing_ips]

    if style == "list":
        return "\n".join(ips) + "\n"
    if style == "postfix":
        return _postfix(ips, region)
    quoted = ",".join(f'"{ip}"' for ip in ips)
    return ("Set-HostedConnectionFilterPolicy -Identity Default "
            f"-IPAllowList @{{Add={quoted}}}\n")


def _postfix(ips: list[str], region: str | Region | None) -> str:
    named = f" of {get_region(region)}" if region is not None else ""
    header = [
        f"# CXone system e-mail allowlist IPs{named}",
        "# Postfix CIDR access table: save as /etc/postfix/cxone_access.cidr",
        "# and use it early in smtpd_client_restrictions:",
        "#   check_client_access cidr:/etc/postfix/cxone_access.cidr",
        "# A cidr: table is read directly: no postmap; run postfix reload.",
    ]
    lines = [f"{ip + '/32':<20} OK" for ip in ips]
    return "\n".join(header + lines) + "\n"


# Reading a result -------------------------------------------------------

_STYLE_TITLES = {
    "list": "one IP per line",
    "postfix": "Postfix CIDR access table",
    "exchange": "Exchange Online PowerShell",
}


def summarise(result: AllowlistResult, source: str | None = None) -> str:
    """Describe a comparison in plain text, for a terminal.

    Parameters
    ----------
    result
        What :func:`check_allowlist` returned.
    source
        The name of the file the entries came from; ``None`` when no
        current allowlist was given.
    """
    region = result.region
    lines = [f"CXone allowlist IPs of {region}: {len(result.ips)}"]
    if source is None:
        lines.append("No current allowlist given: every IP is to be added.")
    else:
        lines.append(f"Current allowlist {source}: {result.entries} entries")
        lines.extend(_coverage_lines(result))
    lines.extend(_entry_lines(result))
    return "\n".join(lines)


def _coverage_lines(result: AllowlistResult) -> list[str]:
    lines: list[str] = []
    for item in result.ips:
        detail = ""
        if item.status == "covered":
            detail = f"by {item.network} (entry {item.entry!r})"
        elif item.refused_by:
            detail = f"refused first by {item.refused_by!r}"
        lines.append(f"  {item.status:8} {item.ip:16} {detail}".rstrip())
    return lines


def _entry_lines(result: AllowlistResult) -> list[str]:
    lines: list[str] = []
    if result.other_region:
        lines.append("Entries holding CXone IPs of other regions:")
        for other in result.other_region:
            shown = ", ".join(other.ips[:4])
            more = len(other.ips) - 4
            shown += f" and {more} more" if more > 0 else ""
            lines.append(f"  {other.entry!r}: {'/'.join(other.regions)} "
                         f"({shown})")
    for title, items in (("Entries not read:", result.unparsed),
                         ("Entries that refuse mail:", result.ignored)):
        if items:
            lines.append(title)
            lines.extend(f"  {e.entry!r}: {e.reason}" for e in items)
    if result.ipv6:
        lines.append("IPv6 entries (CXone's tables are IPv4 only, so they "
                     "neither help nor hurt): " + ", ".join(result.ipv6))
    if result.warnings:
        lines.append("Warnings:")
        lines.extend(f"  {w}" for w in result.warnings)
    return lines


def additions_text(result: AllowlistResult, styles: Sequence[str]) -> str:
    """Write what to add in each of ``styles``, under a title each."""
    missing = result.missing
    if not missing:
        return (f"Nothing to add: every allowlist IP of {result.region.code} "
                "is accepted.")
    parts = [f"To add: {len(missing)} IP(s)"]
    refusing = dict.fromkeys(c.refused_by for c in result.ips if c.refused_by)
    if refusing:
        parts.append("First remove these lines, or put the additions above "
                     "them (the first matching line decides):")
        parts.extend(f"  {line}" for line in refusing)
    for style in styles:
        parts.append(f"--- {_STYLE_TITLES[style]} ---")
        parts.append(format_additions(missing, style,
                                      result.region).rstrip("\n"))
    return "\n".join(parts)
