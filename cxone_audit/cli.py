"""The ``cxone-audit`` command line.

Exit codes: 0 when the run completed, whatever it found; 2 for bad usage or
an input file that cannot be read; 1 for an unexpected failure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from . import __version__
from .allowlist import (
    ADDITION_STYLES,
    CurrentAllowlist,
    additions_text,
    check_allowlist,
    format_additions,
    read_allowlist,
    summarise,
)
from .audit import STATUSES, audit_domain
from .batch import DEFAULT_CONCURRENCY, audit_rows
from .errors import AuditError
from .inputs import normalise_domain, read_rows
from .outputs import (
    ResultStream,
    RunInfo,
    fingerprint,
    finish_outputs,
    result_to_dict,
)
from .regions import REGION_CODES, get_region, load_regions
from .resolver import LiveResolver, Resolver, ZoneFileResolver

log = logging.getLogger("cxone_audit")

EXIT_USAGE = 2


def _fail(message: str) -> click.UsageError:
    return click.UsageError(message)


def _resolver(
    nameservers: Sequence[str], zone_files: Sequence[Path],
    timeout: float, retries: int,
) -> Resolver:
    if zone_files and nameservers:
        raise _fail("use --zone-file or --nameserver, not both")
    try:
        if zone_files:
            return ZoneFileResolver(list(zone_files))
        return LiveResolver(nameservers, timeout=timeout, retries=retries)
    except AuditError as exc:
        raise _fail(str(exc)) from exc


def dns_options(func: Any) -> Any:
    """The options that choose where DNS answers come from."""
    options = [
        click.option("--nameserver", "-n", "nameservers", multiple=True,
                     metavar="ADDR[:PORT]",
                     help="Ask this nameserver (repeatable): 1.1.1.1, "
                          "127.0.0.1:5353, [::1]:5353. Default: the system "
                          "resolver."),
        click.option("--zone-file", "-z", "zone_files", multiple=True,
                     type=click.Path(exists=True, dir_okay=False,
                                     path_type=Path),
                     help="Answer offline from this RFC 1035 master file "
                          "(repeatable) instead of asking DNS."),
        click.option("--timeout", type=click.FloatRange(min=0.1),
                     default=3.0, show_default=True,
                     help="Seconds to wait for one nameserver before asking "
                     "the next."),
        click.option("--retries", type=click.IntRange(min=0), default=1,
                     show_default=True,
                     help="Extra attempts after a timeout or SERVFAIL."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _region_option(required: bool, use: str = "") -> Any:
    return click.option(
        "--region", "-r",
        required=required,
        help="CXone region: " + ", ".join(REGION_CODES)
        + " (or its name in English or Portuguese)." + use,
    )


def _allowlist_option(use: str) -> Any:
    return click.option(
        "--allowlist", "allowlist_file", metavar="FILE",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The mail server's current allowlist, as for 'allowlist "
        "--current'," + use,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cxone-audit")
@click.option("-v", "--verbose", count=True,
              help="Log more (-v: one line per domain, -vv: every query).")
def main(verbose: int) -> None:
    """Audit the e-mail DNS of NICE CXone customers.

    For each domain, check that its SPF record authorises every CXone SPF IP
    of its region (RFC 7208 check_host), say why not, and report.
    """
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: "
                        "%(message)s", stream=sys.stderr)


@main.command()
@click.argument("input_file", metavar="INPUT",
                type=click.Path(dir_okay=False, path_type=Path))
@_region_option(required=False, use=" Used for rows without a region.")
@_allowlist_option(" compared with each row's region. A row's 'allowlist' "
                   "cell (a file, relative to INPUT's folder) overrides it.")
@click.option("--out", "-o", "out_dir", type=click.Path(path_type=Path),
              default=Path("reports/audit"), show_default=True,
              help="Folder for results.json, summary.csv/xlsx, report.html.")
@dns_options
@click.option("--concurrency", "-c", type=click.IntRange(min=1),
              default=DEFAULT_CONCURRENCY, show_default=True,
              help="Domains audited at the same time.")
@click.option("--resume", is_flag=True,
              help="Keep the rows an interrupted run already wrote to "
                   "--out and audit only the rest.")
@click.option("--report/--no-report", default=True, show_default=True,
              help="Render report.html (takes a few seconds).")
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar (default: when on a terminal).")
def audit(
    input_file: Path, region: str | None, allowlist_file: Path | None,
    out_dir: Path, nameservers: tuple[str, ...],
    zone_files: tuple[Path, ...], timeout: float, retries: int,
    concurrency: int, resume: bool, report: bool, progress: bool | None,
) -> None:
    """Audit every domain of a CSV or XLSX file.

    INPUT needs a 'domain' column; a 'region' column is optional when
    --region is given; an 'allowlist' column is optional; other columns
    are carried to the outputs. Results are written to --out as each
    domain finishes; after an interruption, run the same command with
    --resume.
    """
    # Every option is checked before the stream starts afresh, so a typo
    # costs nothing of an earlier run's results.
    resolver = _resolver(nameservers, zone_files, timeout, retries)
    try:
        rows = read_rows(input_file, region)
        default = get_region(region).code if region else None
        current = _run_allowlist(allowlist_file)
        entries = current.entries if current is not None else None
        identity = fingerprint(input_file, default, entries,
                               resolver.describe())
        stream = ResultStream(out_dir, identity, resume=resume)
    except AuditError as exc:
        raise _fail(str(exc)) from exc
    except OSError as exc:
        raise _fail(f"cannot write to --out {out_dir}: "
                    f"{exc.strerror or exc}") from exc

    started, kept = time.monotonic(), len(stream.done)
    info = RunInfo(resolver=resolver.describe(), input=input_file.name,
                   default_region=default, kept=kept,
                   allowlist=current.file if current is not None else None)
    show = sys.stderr.isatty() if progress is None else progress
    work = audit_rows(rows, resolver, concurrency=concurrency,
                      progress=show, on_result=stream.append,
                      skip=set(stream.done), keep=False, allowlist=current,
                      allowlist_folder=input_file.parent)
    _audit_streaming(work, len(rows), stream)
    info.dns = resolver.stats.to_dict()
    info.finished = datetime.now(UTC)
    try:
        paths = finish_outputs(stream, info)
        _print_summary(stream.counts, time.monotonic() - started, kept)
        if report:
            _render_report(out_dir, paths)
        else:
            click.echo("no report.html (--no-report): "
                       "cxone_audit.report.render_report(OUT) renders it")
    except KeyboardInterrupt:
        click.echo(
            f"\ninterrupted while writing the outputs: every row is saved "
            f"in {stream.path}; run the same command with --resume to "
            "write them", err=True)
        sys.exit(130)
    _print_paths(paths)


def _run_allowlist(path: Path | None) -> CurrentAllowlist | None:
    """The run's own allowlist, read once at the start.

    Raises
    ------
    InputFileError
        If the file cannot be read: bad usage, like an unreadable INPUT.
    """
    if path is None:
        return None
    return CurrentAllowlist(str(path), tuple(read_allowlist(path)))


def _audit_streaming(work: Any, total: int, stream: ResultStream) -> None:
    """Run the audit of the rows not yet in the stream (``audit_rows``).

    Each row is appended to the stream as it ends; an interruption or a
    write failure says how many rows are kept.
    """
    try:
        _run(work)
    except KeyboardInterrupt:
        click.echo(
            f"\ninterrupted: {len(stream.done)} of {total} rows are "
            f"saved in {stream.path}; run the same command with --resume "
            "to finish", err=True)
        sys.exit(130)
    except OSError as exc:
        click.echo(
            f"error writing results: {exc}; {len(stream.done)} rows are "
            f"saved in {stream.path}; free the problem, then --resume",
            err=True)
        sys.exit(1)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _render_report(out_dir: Path, paths: dict[str, Path]) -> None:
    """Render report.html; a failure is a warning, the results stand."""
    from .report import render_report

    started = time.monotonic()
    try:
        paths["html"] = render_report(out_dir)
    except AuditError as exc:
        click.echo(f"warning: no report.html: {exc}", err=True)
        return
    click.echo(f"report rendered in {time.monotonic() - started:.1f} s")


def _print_summary(
    counts: Mapping[str, int], seconds: float, kept: int = 0
) -> None:
    summary = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
    total = sum(counts.values())
    resumed = f" ({kept} kept from the earlier run)" if kept else ""
    click.echo(f"{total} rows audited in {seconds:.1f} s{resumed}"
               + (f": {summary}" if summary else " (the input has no rows)"))


def _print_paths(paths: dict[str, Path]) -> None:
    for label in ("html", "json", "csv", "xlsx"):
        if label in paths:
            click.echo(f"  {label:5} {paths[label]}")


@main.command()
@click.argument("domain")
@_region_option(required=True)
@_allowlist_option(" compared with the region's allowlist IPs.")
@dns_options
@click.option("--json", "as_json", is_flag=True,
              help="Print the result as JSON (the results.json object).")
def check(
    domain: str, region: str, allowlist_file: Path | None,
    nameservers: tuple[str, ...], zone_files: tuple[Path, ...],
    timeout: float, retries: int, as_json: bool,
) -> None:
    """Check one DOMAIN against its region's CXone SPF IPs."""
    name, notes, error = normalise_domain(domain)
    if error or name is None:
        raise _fail(error or "no domain given")
    try:
        found = get_region(region)
        current = _run_allowlist(allowlist_file)
    except AuditError as exc:
        raise _fail(str(exc)) from exc
    resolver = _resolver(nameservers, zone_files, timeout, retries)

    result = _run(audit_domain(name, found, resolver, raw=domain,
                               notes=notes, allowlist=current))
    data = result_to_dict(result)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    click.echo(format_result(data))


def format_result(data: dict[str, Any]) -> str:
    """A readable, plain-text account of one result."""
    records = data["spf"]["records"]
    record = data["spf"]["record"] or (
        "(unknown: the lookup failed)" if data["status"] == "dns-error"
        else f"({len(records)} records)" if records else "(none)")
    lines = [
        f"{data['domain']} ({data['region']} {data['region_name']}): "
        f"{data['status']}",
        f"  {data['reason']}",
        f"  SPF record: {record}",
        f"  DNS-querying terms: {data['spf']['dns_lookups']}/10, "
        f"void lookups: {data['spf']['void_lookups']}/2",
    ]
    for verdict in data["ips"]:
        lines.append(f"  {verdict['ip']:>16}  {_explain(verdict)}")
    for note in data["notes"]:
        lines.append(f"  note: {note}")
    for finding in data.get("findings", []):
        lines.append(f"  [{finding['severity']}] {finding['code']}: "
                     f"{finding['title']}")
    lines.extend(_allowlist_lines(data.get("allowlist")))
    proposal = data.get("proposal")
    if proposal and proposal.get("record"):
        optional = " (optional: SES-verified)" if proposal["optional"] else ""
        lines.append(f"  publish{optional}: {proposal['record']}")
    elif proposal and proposal.get("blocked_by"):
        lines.append(f"  fix first: {proposal['blocked_by']}")
    return "\n".join(lines)


def _allowlist_lines(section: dict[str, Any] | None) -> list[str]:
    if not section:
        return []
    if section.get("error"):
        return [f"  allowlist {section['file']}: not compared: "
                f"{section['error']}"]
    accepted = len(section["ips"]) - len(section["missing"])
    lines = [f"  allowlist {section['file']}: {accepted} of "
             f"{len(section['ips'])} CXone allowlist IPs accepted"]
    if section["missing"]:
        lines.append(f"  allowlist, add: {', '.join(section['missing'])}")
    return lines


def _explain(verdict: dict[str, Any]) -> str:
    if verdict["reason"]:
        return f"{verdict['result']}: {verdict['reason']}"
    if verdict["matched"] is None:
        return f"{verdict['result']}: no term matched (default)"
    via = " via " + " > ".join(verdict["path"]) if verdict["path"] else ""
    return (f"{verdict['result']}: {verdict['matched']} in "
            f"{verdict['matched_in']}{via}")


@main.command()
@_region_option(required=False, use=" Only this region.")
@click.option("--purpose", type=click.Choice(["allowlist", "spf"]),
              help="Only the allowlist IPs (receive system e-mail) or the "
                   "SPF IPs (send ACD e-mail).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]),
              default="table", show_default=True)
def regions(region: str | None, purpose: str | None, fmt: str) -> None:
    """Print CXone's region IP tables."""
    try:
        frame = load_regions(region, purpose)  # type: ignore[arg-type]
    except AuditError as exc:
        raise _fail(str(exc)) from exc
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(frame.to_json(orient="records", indent=1,
                                 force_ascii=False))
    else:
        shown = frame[["region", "region_name", "purpose", "ip"]]
        click.echo(shown.to_string(index=False))
        click.echo(f"\nsource: {frame['source'].iloc[0]}, taken "
                   f"{frame['taken'].iloc[0]}")



@main.command()
@_region_option(required=True)
@click.option("--current", "current", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="The mail server's current allowlist: a text file (one "
                   "entry per line) or a CSV export with an ip/address/"
                   "cidr/range/network column.")
@click.option("--format", "fmt",
              type=click.Choice([*ADDITION_STYLES, "all"]), default="all",
              show_default=True,
              help="How to print what to add: a plain list, a Postfix CIDR "
                   "access table, an Exchange Online command, or all three.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the comparison and the additions as JSON.")
def allowlist(
    region: str, current: Path | None, fmt: str, as_json: bool
) -> None:
    """Compare a mail server allowlist with a region's CXone allowlist IPs.

    Says which IPs are present, covered by a wider entry or missing, which
    entries belong to other regions or could not be read, and prints what
    to add. Without --current every IP is to be added.
    """
    try:
        entries = read_allowlist(current) if current is not None else []
        result = check_allowlist(entries, region)
    except AuditError as exc:
        raise _fail(str(exc)) from exc

    styles = list(ADDITION_STYLES) if fmt == "all" else [fmt]
    if as_json:
        data = result.to_dict()
        data["source"] = current.name if current is not None else None
        data["additions"] = {s: format_additions(result.missing, s,
                                                 result.region)
                             for s in styles}
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    source = str(current) if current is not None else None
    click.echo(summarise(result, source))
    click.echo("")
    click.echo(additions_text(result, styles))

if __name__ == "__main__":  # pragma: no cover
    main()
