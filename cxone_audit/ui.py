"""The interactive audit tool for JupyterLab and Voilà.

:class:`AuditTool` puts the kit behind a few ipywidgets: choose a region,
type domains or upload a spreadsheet, press *Audit*, read a colour-coded
table, and open one domain to see its record, the verdict of every CXone SPF
IP (with the deciding term and the include path), the findings and the record
to publish. Two more tabs show the region tables and check an allowlist.

The audit runs as an asyncio task on the kernel's event loop, so the page
stays usable while DNS answers come in; the progress bar moves with each
result. Every problem a user can cause (unknown region, unusable domain,
unreachable DNS, unreadable file) is shown as a message in the tool, never as
a traceback.

DNS text and spreadsheet cells come from strangers: text goes into widgets
through their ``value`` (never interpreted), and every string placed in an
HTML widget passes through :func:`html.escape` first.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from .allowlist import check_allowlist, format_additions, read_allowlist
from .audit import STATUSES, DomainResult
from .batch import audit_rows
from .errors import AuditError
from .inputs import InputRow, read_table, rows_from_frame
from .outputs import RunInfo, result_to_dict, summary_frame, write_outputs
from .regions import get_region, load_regions, table_date
from .resolver import LiveResolver, Resolver, ZoneFileResolver

__all__ = [
    "STATUS_COLOURS",
    "AuditTool",
    "detail_html",
    "regions_html",
    "results_html",
    "split_entries",
]

log = logging.getLogger(__name__)

#: Background and text colour of each status, most urgent first.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "input-error": ("#e5e7eb", "#374151"),
    "dns-error": ("#ede9fe", "#5b21b6"),
    "no-spf": ("#fee2e2", "#991b1b"),
    "spf-error": ("#fee2e2", "#991b1b"),
    "not-authorised": ("#fee2e2", "#991b1b"),
    "partly-authorised": ("#fef3c7", "#92400e"),
    "authorised": ("#dcfce7", "#166534"),
}

#: Colours of the seven RFC 7208 results in the per-IP table.
RESULT_COLOURS: dict[str, tuple[str, str]] = {
    "pass": STATUS_COLOURS["authorised"],
    "fail": STATUS_COLOURS["not-authorised"],
    "softfail": STATUS_COLOURS["not-authorised"],
    "neutral": STATUS_COLOURS["partly-authorised"],
    "none": STATUS_COLOURS["partly-authorised"],
    "permerror": STATUS_COLOURS["dns-error"],
    "temperror": STATUS_COLOURS["dns-error"],
}

#: Rows drawn in the results table; the saved outputs hold them all.
TABLE_LIMIT = 500

#: Seconds between two moves of the progress bar.
PROGRESS_EVERY = 0.1

#: Width of the labels in front of the inputs, and the gap under them.
_LABELS = {"description_width": "110px"}
_LABEL_GAP = "114px"
_TOGGLES = {"button_width": "auto"}

_SEPARATORS = re.compile(r"[\s,;]+")

_STYLE = """<style>
.cxa-title{font-size:1.35em;font-weight:600;margin:0 0 2px}
.cxa-sub{color:#6b7280;margin:0 0 6px}
.cxa-table{border-collapse:collapse;font-size:13px;margin:4px 0;
  width:100%}
.cxa-table th{text-align:left;border-bottom:2px solid #d1d5db;
  padding:4px 8px;white-space:nowrap}
.cxa-table td{border-bottom:1px solid #e5e7eb;padding:4px 8px;
  vertical-align:top}
.cxa-badge{display:inline-block;border-radius:9px;padding:1px 8px;
  font-size:12px;font-weight:600;white-space:nowrap}
.cxa-mono{font-family:ui-monospace,Menlo,Consolas,monospace;
  overflow-wrap:break-word}
.cxa-name{white-space:nowrap}
.cxa-pre{font-family:ui-monospace,Menlo,Consolas,monospace;
  background:#f3f4f6;padding:6px 8px;border-radius:4px;white-space:pre-wrap;
  overflow-wrap:anywhere;margin:2px 0 6px}
.cxa-msg{padding:6px 10px;border-radius:4px;margin:4px 0}
.cxa-error{background:#fee2e2;color:#991b1b}
.cxa-warn{background:#fef3c7;color:#92400e}
.cxa-info{background:#e0f2fe;color:#075985}
.cxa-ok{background:#dcfce7;color:#166534}
.cxa-h{font-weight:600;margin:10px 0 2px}
.cxa-finding{margin:4px 0 8px;line-height:1.45}
.cxa-finding details{color:#4b5563;margin-top:2px}
.cxa-list{margin:2px 0;padding-left:20px}
</style>"""


# ---------------------------------------------------------------- HTML parts


def _e(value: Any) -> str:
    """Escape any value for HTML (``None`` becomes an empty string)."""
    return html.escape("" if value is None else str(value))


def badge(text: str, colours: tuple[str, str]) -> str:
    """A coloured pill holding ``text`` (escaped)."""
    background, colour = colours
    return (f'<span class="cxa-badge" style="background:{background};'
            f'color:{colour}">{_e(text)}</span>')


def status_badge(status: str) -> str:
    """The pill of one status, titled with its meaning."""
    colours = STATUS_COLOURS.get(status, STATUS_COLOURS["input-error"])
    pill = badge(status, colours)
    return f'<span title="{_e(STATUSES.get(status, ""))}">{pill}</span>'


def message_html(text: str, kind: str = "info") -> str:
    """A message box: ``kind`` is ``error``, ``warn``, ``info`` or ``ok``."""
    return f'<div class="cxa-msg cxa-{kind}">{_e(text)}</div>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """An HTML table from cells that are already escaped HTML."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return (f'<table class="cxa-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def counts_html(results: Sequence[Mapping[str, Any]]) -> str:
    """One pill per status present, with its count."""
    counts = Counter(r["status"] for r in results)
    pills = [
        badge(f"{counts[s]} {s}", STATUS_COLOURS[s])
        for s in STATUSES if counts[s]
    ]
    return f"<div>{len(results)} rows: {' '.join(pills)}</div>"


def results_html(
    results: Sequence[Mapping[str, Any]], limit: int = TABLE_LIMIT
) -> str:
    """The colour-coded results table, from result dicts.

    Parameters
    ----------
    results
        Objects made by :func:`cxone_audit.outputs.result_to_dict`.
    limit
        Rows drawn at most; a note says how many more the outputs hold.
    """
    rows = [
        (
            _e(r["row"]),
            f'<span class="cxa-mono cxa-name">'
            f'{_e(r["domain"] or r["input"])}</span>',
            _e(r["region"] or ""),
            status_badge(r["status"]),
            _e(r["reason"]),
        )
        for r in results[:limit]
    ]
    table = _table(("row", "domain", "region", "status", "why"), rows)

    hidden = len(results) - limit
    note = (f'<div class="cxa-sub">{hidden} more rows are not drawn here; '
            "save the outputs to see them all.</div>" if hidden > 0 else "")
    return counts_html(results) + table + note


def _path_text(verdict: Mapping[str, Any]) -> str:
    """The include/redirect chain of a verdict, outermost first."""
    return " > ".join(verdict.get("path") or ())


def verdicts_html(verdicts: Sequence[Mapping[str, Any]]) -> str:
    """The per-IP table: result, deciding term, where, include path."""
    rows = [
        (
            f'<span class="cxa-mono">{_e(v["ip"])}</span>',
            badge(v["result"], RESULT_COLOURS.get(
                v["result"], STATUS_COLOURS["input-error"])),
            f'<span class="cxa-mono">'
            f'{_e(v.get("matched") or "(no term matched)")}</span>',
            f'<span class="cxa-mono">{_e(v.get("matched_in") or "")}</span>',
            f'<span class="cxa-mono">{_e(_path_text(v))}</span>',
            _e(v.get("reason") or ""),
        )
        for v in verdicts
    ]
    headers = ("CXone SPF IP", "result", "deciding term", "in record of",
               "include path", "reason")
    return _table(headers, rows)


#: Colours of the finding severities.
SEVERITY_COLOURS: dict[str, tuple[str, str]] = {
    "critical": ("#991b1b", "#ffffff"),
    "high": STATUS_COLOURS["not-authorised"],
    "medium": STATUS_COLOURS["partly-authorised"],
    "low": ("#e0f2fe", "#075985"),
    "info": STATUS_COLOURS["input-error"],
}


def findings_html(findings: Sequence[Mapping[str, Any]]) -> str:
    """List the findings: severity, title, detail, what to do and why."""
    if not findings:
        return ""
    items = "".join(_finding_html(f) for f in findings)
    return f'<div class="cxa-h">Findings</div>{items}'


def _finding_html(finding: Mapping[str, Any]) -> str:
    severity = str(finding.get("severity", ""))
    pill = badge(severity, SEVERITY_COLOURS.get(
        severity, STATUS_COLOURS["input-error"]))
    parts = [f"<div>{pill} <b>{_e(finding.get('title'))}</b> "
             f'<span class="cxa-sub cxa-mono">{_e(finding.get("code"))}'
             "</span></div>"]
    if finding.get("detail"):
        parts.append(f"<div>{_e(finding['detail'])}</div>")
    if finding.get("action"):
        parts.append(f"<div><i>What to do:</i> {_e(finding['action'])}</div>")
    if finding.get("explanation"):
        rfc = f" ({_e(finding['rfc'])})" if finding.get("rfc") else ""
        parts.append(f"<details><summary>Why it matters{rfc}</summary>"
                     f"{_e(finding['explanation'])}</details>")
    return f'<div class="cxa-finding">{"".join(parts)}</div>'


def context_html(data: Mapping[str, Any]) -> str:
    """One line each for the domain's DMARC, MX and Amazon SES context."""
    lines = []
    dmarc = data.get("dmarc")
    if dmarc:
        record = f" ({dmarc['record']})" if dmarc.get("record") else ""
        lines.append(("DMARC", f"{dmarc.get('meaning', '')}{record}"))
    mx = data.get("mx")
    if mx:
        hosts = ", ".join(str(h[1]) for h in mx.get("hosts") or ())
        service = f" ({mx['service']})" if mx.get("service") else ""
        problems = "; ".join(mx.get("problems") or ())
        lines.append(("MX", (hosts + service) or problems))
    ses = data.get("ses")
    if ses:
        known = {True: "verified", False: "not verified", None: "unknown"}
        lines.append(("Amazon SES", known.get(ses.get("verified"), "")))
    if not lines:
        return ""
    rows = "".join(f"<li><b>{_e(k)}:</b> {_e(v)}</li>" for k, v in lines)
    return f'<div class="cxa-h">Context</div><ul class="cxa-list">{rows}</ul>'


def detail_html(data: Mapping[str, Any]) -> str:
    """The head of one result: status, SPF record, per-IP verdicts.

    The proposed record follows in Textareas, where it is easy to copy,
    then :func:`more_html` (see :meth:`AuditTool.select`).
    """
    spf = data["spf"]
    title = _e(data["domain"] or data["input"])
    region = f"{_e(data['region'])} {_e(data['region_name'])}" \
        if data["region"] else "no region"
    record = spf.get("record") or "(no single SPF record)"
    extra_records = "".join(
        f'<div class="cxa-pre">{_e(r)}</div>' for r in spf.get("records", [])
    ) if not spf.get("record") and spf.get("records") else ""
    notes = "".join(f"<li>{_e(n)}</li>" for n in data.get("notes", []))

    return (
        f'<div class="cxa-title cxa-mono">{title}</div>'
        f"<div>{status_badge(data['status'])} {_e(data['reason'])}</div>"
        f'<div class="cxa-sub">{region}</div>'
        + (f'<ul class="cxa-sub">{notes}</ul>' if notes else "")
        + '<div class="cxa-h">SPF record</div>'
        f'<div class="cxa-pre">{_e(record)}</div>{extra_records}'
        f'<div class="cxa-sub">DNS-querying terms {_e(spf["dns_lookups"])}'
        f'/10 · void lookups {_e(spf["void_lookups"])}/2</div>'
        + (verdicts_html(data["ips"]) if data.get("ips") else "")
    )


def more_html(data: Mapping[str, Any]) -> str:
    """The tail of one result: findings, then DMARC/MX/SES context."""
    return findings_html(data.get("findings") or []) + context_html(data)


def proposal_state(data: Mapping[str, Any]) -> tuple[str, str]:
    """What the proposal says in a message: ``(text, kind)``."""
    proposal = data.get("proposal") or {}
    if proposal.get("blocked_by"):
        return (f"No record proposed yet: {proposal['blocked_by']}",
                "warn")
    return str(proposal.get("note") or ""), (
        "info" if proposal.get("record") else "ok")


def regions_html(frame: pd.DataFrame) -> str:
    """The region IP table, one row per (region, purpose, IP)."""
    rows = [
        (_e(r.region), _e(r.region_name), _e(r.region_name_pt),
         badge(r.purpose, STATUS_COLOURS["authorised" if r.purpose == "spf"
                                         else "dns-error"]),
         f'<span class="cxa-mono">{_e(r.ip)}</span>')
        for r in frame.itertuples()
    ]
    headers = ("region", "name", "name (pt-BR)", "purpose", "IP")
    source = frame["source"].iloc[0] if len(frame) else ""
    note = (f'<div class="cxa-sub">{len(frame)} addresses · source: '
            f"{_e(source)}, taken {_e(table_date())}</div>")
    return note + _table(headers, rows)


def split_entries(text: str | Iterable[str]) -> list[str]:
    """Split what a user typed (lines, commas, spaces) into entries."""
    if not isinstance(text, str):
        text = "\n".join(text)
    return [part for part in _SEPARATORS.split(text) if part]


# ----------------------------------------------------------------- the tool


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _region_options() -> list[tuple[str, str]]:
    frame = load_regions().drop_duplicates("region")
    return [(f"{r.region} · {r.region_name}", r.region)
            for r in frame.itertuples()]


def _name_parts(**parts: widgets.DOMWidget) -> None:
    """Give each part a ``cxa-NAME`` class, a stable hook for the tests."""
    for name, widget in parts.items():
        widget.add_class("cxa-" + name.replace("_", "-"))


def _text(
    description: str, placeholder: str, value: str, width: str = "560px"
) -> widgets.Text:
    return widgets.Text(
        value=value, description=description, placeholder=placeholder,
        style=_LABELS, layout=widgets.Layout(width=width),
    )


def _area(
    description: str, placeholder: str, value: str,
    width: str = "560px", height: str = "90px",
) -> widgets.Textarea:
    return widgets.Textarea(
        value=value, description=description, placeholder=placeholder,
        style=_LABELS, layout=widgets.Layout(width=width, height=height),
    )


def _button(
    description: str, handler: Any, **options: Any
) -> widgets.Button:
    button = widgets.Button(description=description, **options)
    button.on_click(handler)
    return button


def _labelled(text: str, widget: widgets.Widget) -> widgets.HBox:
    """A widget behind a label placed like the inputs' own labels."""
    label = widgets.HTML(
        f'<div style="text-align:right;padding-right:4px">{_e(text)}</div>',
        layout=widgets.Layout(width=_LABEL_GAP),
    )
    return widgets.HBox([label, widget])


def _indented(*children: widgets.Widget) -> widgets.HBox:
    """A row that starts where the labelled inputs above start."""
    gap = widgets.Label("", layout=widgets.Layout(width=_LABEL_GAP))
    return widgets.HBox([gap, *children])


class AuditTool:
    """The audit, region and allowlist tabs, ready to display.

    Parameters
    ----------
    region
        The region chosen at start (code or name); an unknown one leaves the
        choice empty and says why.
    domains
        Domains to fill in, as text or a list.
    nameservers
        Nameservers to ask (``"1.1.1.1, 127.0.0.1:5353"``); empty means the
        system resolver.
    zone_file
        A master file to answer from instead of DNS.
    out_dir
        The folder the *Save* button suggests.
    timeout, retries
        Per-query timeout in seconds and extra attempts, for live DNS.

    Attributes
    ----------
    widget
        The top widget; :meth:`show` displays it.
    results
        The last run's results, in input order.
    task
        The running (or last) audit or save task.
    """

    def __init__(
        self,
        region: str | None = "EU1",
        domains: str | Sequence[str] = "",
        nameservers: str | Sequence[str] = "",
        zone_file: str | Path = "",
        out_dir: str | Path = "reports/explore",
        timeout: float = 3.0,
        retries: int = 1,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.results: list[DomainResult] = []
        self.info: RunInfo | None = None
        self.task: asyncio.Task[Any] | None = None
        self._dicts: list[dict[str, Any]] = []
        self._done, self._shown_at = 0, 0.0
        self._upload_frame: pd.DataFrame | None = None
        self._upload_name = ""

        self._build_audit_tab(domains, nameservers, zone_file, out_dir)
        self._build_regions_tab()
        self._build_allowlist_tab()
        self.tabs = widgets.Tab(
            children=[self.audit_tab, self.regions_tab, self.allowlist_tab],
            titles=("Audit", "Region tables", "Allowlist check"),
        )
        header = widgets.HTML(
            _STYLE + '<div class="cxa-title">CXone e-mail DNS audit</div>'
            '<div class="cxa-sub">Does each domain\'s SPF record authorise '
            "every CXone SPF IP of its region (RFC 7208 check_host)?</div>"
        )
        self.widget = widgets.VBox([header, self.tabs])
        self.widget.add_class("cxa-tool")
        self.set_region(region)

    # ---------------------------------------------------------- building

    def _build_audit_tab(
        self, domains: str | Sequence[str], nameservers: str | Sequence[str],
        zone_file: str | Path, out_dir: str | Path,
    ) -> None:
        inputs = self._build_inputs(domains, nameservers, zone_file)
        self.message = widgets.HTML()
        self.table = widgets.HTML()
        details = self._build_details()
        saving = self._build_save(out_dir)
        self.audit_tab = widgets.VBox(
            [inputs, self.message, self.table, details, saving]
        )

    def _build_inputs(
        self, domains: str | Sequence[str], nameservers: str | Sequence[str],
        zone_file: str | Path,
    ) -> widgets.Widget:
        self.region = widgets.Dropdown(
            options=_region_options(), value=None, description="Region",
            style=_LABELS, layout=widgets.Layout(width="340px"),
        )
        self.domains = _area(
            "Domains", "one or more domains, one per line or comma-separated",
            "\n".join(split_entries(domains)), height="90px",
        )
        self.upload = widgets.FileUpload(
            accept=".csv,.xlsx,.xlsm", multiple=False,
            description="Upload CSV/XLSX",
            layout=widgets.Layout(width="200px"),
        )
        self.upload.observe(self._on_upload, names="value")
        self.upload_note = widgets.HTML()
        self.nameservers = _text(
            "Nameservers", "system resolver; or 1.1.1.1, 127.0.0.1:5353",
            ", ".join(split_entries(nameservers)),
        )
        self.zone_file = _text(
            "Zone file", "optional: answer offline from a master file "
            "(../data/sample.zone)",
            str(zone_file),
        )
        run = self._build_run()
        _name_parts(region=self.region, domains=self.domains,
                    upload=self.upload, nameservers=self.nameservers,
                    zone_file=self.zone_file)
        return widgets.VBox([
            self.region, self.domains,
            _indented(self.upload, self.upload_note),
            self.nameservers, self.zone_file, run,
        ])

    def _build_run(self) -> widgets.Widget:
        self.audit_button = _button(
            "Audit", self.start_audit, button_style="primary",
            tooltip="Audit the domains against the region's CXone SPF IPs",
        )
        self.stop_button = _button(
            "Stop", self._on_stop, disabled=True,
            tooltip="Stop the running audit",
        )
        self.progress = widgets.IntProgress(
            value=0, min=0, max=1, layout=widgets.Layout(width="300px"),
        )
        self.progress_label = widgets.Label("")
        _name_parts(audit=self.audit_button, stop=self.stop_button,
                    progress=self.progress)
        return _indented(self.audit_button, self.stop_button, self.progress,
                         self.progress_label)

    def _build_details(self) -> widgets.Widget:
        self.choice = widgets.Select(
            options=[], rows=6, description="Details for", style=_LABELS,
            layout=widgets.Layout(width="560px"),
        )
        self.choice.observe(self._on_choice, names="value")
        self.detail = widgets.HTML()
        self.more = widgets.HTML()
        self.proposal_note = widgets.HTML()
        self.proposal = _area("TXT value", "", "", width="98%",
                              height="64px")
        self.zone_line = _area("Zone file", "", "", width="98%",
                               height="64px")
        self.proposal_records = widgets.VBox(
            [self.proposal, self.zone_line],
            layout=widgets.Layout(display="none"),
        )
        proposal_box = widgets.VBox([
            widgets.HTML('<div class="cxa-h">What to publish '
                         '<span class="cxa-sub">(click a box, select all, '
                         "copy)</span></div>"),
            self.proposal_note, self.proposal_records,
        ])
        self.details_box = widgets.VBox(
            [self.choice, self.detail, proposal_box, self.more],
            layout=widgets.Layout(display="none"),
        )
        _name_parts(message=self.message, results=self.table,
                    choice=self.choice, detail=self.detail, more=self.more,
                    proposal=self.proposal, zone_line=self.zone_line,
                    proposal_note=self.proposal_note)
        return self.details_box

    def _build_save(self, out_dir: str | Path) -> widgets.Widget:
        self.out_dir = _text("Save to", "a folder", str(out_dir),
                             width="560px")
        self.save_button = _button(
            "Save outputs", self.start_save, disabled=True,
            tooltip="Write results.json, summary.csv/xlsx and report.html",
        )
        self.save_message = widgets.HTML()
        self.save_box = widgets.VBox(
            [widgets.HBox([self.out_dir, self.save_button]),
             self.save_message],
            layout=widgets.Layout(display="none"),
        )
        _name_parts(out_dir=self.out_dir, save=self.save_button,
                    saved=self.save_message)
        return self.save_box

    def _build_regions_tab(self) -> None:
        options = [("all regions", "")] + _region_options()
        self.regions_region = widgets.Dropdown(
            options=options, value="", description="Region",
            style=_LABELS, layout=widgets.Layout(width="340px"),
        )
        self.regions_purpose = widgets.ToggleButtons(
            options=[("all", ""), ("allowlist (receive)", "allowlist"),
                     ("SPF (send)", "spf")],
            value="", style=_TOGGLES,
        )
        self.regions_table = widgets.HTML()
        for control in (self.regions_region, self.regions_purpose):
            control.observe(lambda _change: self.show_regions(),
                            names="value")
        self.regions_tab = widgets.VBox([
            self.regions_region, _labelled("Purpose", self.regions_purpose),
            self.regions_table,
        ])
        _name_parts(regions_region=self.regions_region,
                    regions_purpose=self.regions_purpose,
                    regions_table=self.regions_table)
        self.show_regions()

    def _build_allowlist_tab(self) -> None:
        self.allow_region = widgets.Dropdown(
            options=_region_options(), value=None, description="Region",
            style=_LABELS, layout=widgets.Layout(width="340px"),
        )
        self.allow_text = _area(
            "Addresses", "paste the addresses your mail server accepts, one "
            "per line: 203.0.113.0/24, 198.51.100.7, a Postfix access table "
            "or a CSV export", "", height="140px",
        )
        self.allow_button = _button("Check allowlist", self.check_allowlist,
                                    button_style="primary")
        self.allow_result = widgets.HTML()
        self.allow_style = widgets.ToggleButtons(
            options=[("plain list", "list"), ("Postfix", "postfix"),
                     ("Exchange Online", "exchange")],
            value="list", style=_TOGGLES,
        )
        self.allow_style.observe(lambda _c: self._show_additions(),
                                 names="value")
        self.allow_additions = _area("Add", "", "", width="98%",
                                     height="180px")
        self.allow_additions_box = widgets.VBox(
            [_labelled("Write as", self.allow_style), self.allow_additions],
            layout=widgets.Layout(display="none"),
        )
        self._allow_check: Any = None
        self.allowlist_tab = widgets.VBox([
            widgets.HTML('<div class="cxa-sub">Does your mail server accept '
                         "the addresses CXone system e-mail (password "
                         "resets, transcripts, reports) comes from?</div>"),
            self.allow_region, self.allow_text,
            _indented(self.allow_button), self.allow_result,
            self.allow_additions_box,
        ])
        _name_parts(allow_region=self.allow_region,
                    allow_text=self.allow_text,
                    allow_check=self.allow_button,
                    allow_result=self.allow_result,
                    allow_style=self.allow_style,
                    allow_additions=self.allow_additions)

    # ------------------------------------------------------------- showing

    def show(self) -> None:
        """Display the tool in the notebook (or the Voilà page)."""
        from IPython.display import display

        display(self.widget)

    def _ipython_display_(self) -> None:
        self.show()

    def say(self, text: str, kind: str = "info") -> None:
        """Show one message above the results (escaped)."""
        self.message.value = message_html(text, kind) if text else ""

    def set_region(self, region: str | None) -> None:
        """Choose a region by code or name; say so when it is unknown."""
        if not region:
            self.region.value = None
            return
        try:
            code = get_region(region).code
        except AuditError as exc:
            self.region.value = None
            self.say(str(exc), "error")
            return
        self.region.value = code
        self.allow_region.value = code

    def show_regions(self) -> None:
        """Redraw the region table for the chosen region and purpose."""
        region = self.regions_region.value or None
        purpose = self.regions_purpose.value or None
        frame = load_regions(region, purpose)
        self.regions_table.value = regions_html(frame)

    # -------------------------------------------------------------- inputs

    def _on_upload(self, change: Mapping[str, Any]) -> None:
        files = change["new"]
        if not files:
            self._upload_frame, self._upload_name = None, ""
            self.upload_note.value = ""
            return
        item = files[0]
        self.load_file(item["name"], bytes(item["content"]))

    def load_file(self, name: str, content: bytes) -> bool:
        """Read an uploaded CSV/XLSX; keep it for the next audit.

        Returns
        -------
        bool
            Whether the file could be read.
        """
        # Only the file's own name: the browser's name is not a path here.
        name = Path(name).name.strip(". ") or "upload"
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            try:
                path.write_bytes(content)
                frame = read_table(path)
            except (AuditError, OSError) as exc:
                self._upload_frame, self._upload_name = None, ""
                self.upload_note.value = ""
                self.say(str(exc).replace(str(path), name), "error")
                return False

        self._upload_frame, self._upload_name = frame, name
        self.upload_note.value = (
            f'<span class="cxa-sub">{_e(name)}: {_rows(len(frame))} '
            "(added to the domains typed above)</span>"
        )
        self.say("")
        return True

    def rows(self) -> list[InputRow]:
        """The rows the next audit will take: typed domains, then the file.

        Raises
        ------
        AuditError
            No region, an unknown region, nothing to audit, or a file
            without a ``domain`` column.
        """
        if self.region.value is None:
            raise AuditError("choose a region first")
        region = get_region(self.region.value)

        typed = pd.DataFrame({"domain": split_entries(self.domains.value)})
        frames = [f for f in (typed, self._upload_frame)
                  if f is not None and len(f)]
        if not frames:
            raise AuditError("type at least one domain or upload a file")
        frame = pd.concat(frames, ignore_index=True).fillna("")
        return rows_from_frame(frame.astype(str), region)

    def resolver(self) -> Resolver:
        """The resolver the options ask for.

        Raises
        ------
        AuditError
            Both a zone file and nameservers, a zone file that cannot be
            read, or a nameserver that is not an address.
        """
        servers = split_entries(self.nameservers.value)
        zone = self.zone_file.value.strip()
        if zone and servers:
            raise AuditError("use nameservers or a zone file, not both")
        if zone:
            return ZoneFileResolver(Path(zone).expanduser())
        return LiveResolver(servers, timeout=self.timeout,
                            retries=self.retries)

    # --------------------------------------------------------------- audit

    def start_audit(self, _button: Any = None) -> asyncio.Task[Any] | None:
        """The *Audit* button: start :meth:`run` on the running loop."""
        if self.task is not None and not self.task.done():
            return self.task
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.say("no running event loop: call `await tool.run()`",
                     "error")
            return None
        self.task = loop.create_task(self.run())
        return self.task

    def _on_stop(self, _button: Any = None) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def run(self) -> list[DomainResult]:
        """Audit the rows; show progress, the table and the first details.

        Returns
        -------
        list
            The results, also kept in :attr:`results`; empty when the
            inputs were refused (the message says why).
        """
        try:
            rows, resolver = self.rows(), self.resolver()
        except AuditError as exc:
            self.say(str(exc), "error")
            return []

        self._busy(True, len(rows))
        info = RunInfo(resolver=resolver.describe(),
                       input=self._upload_name or "typed in the tool",
                       default_region=self.region.value)
        try:
            results = await audit_rows(rows, resolver, progress=False,
                                       on_result=self._on_result)
        except asyncio.CancelledError:
            self.say("audit stopped", "warn")
            return []
        except Exception as exc:  # shown, never a traceback in the page
            log.exception("audit failed")
            self.say(f"the audit failed: {exc}", "error")
            return []
        finally:
            self._busy(False, len(rows))

        info.dns = resolver.stats.to_dict()
        info.finished = datetime.now(UTC)
        self.show_results(results, info)
        return results

    def _busy(self, busy: bool, total: int) -> None:
        self.audit_button.disabled = busy
        self.stop_button.disabled = not busy
        self.save_button.disabled = busy or not self.results
        if busy:
            self._done, self._shown_at = 0, 0.0
            self.progress.max = max(total, 1)
            self.progress.value = 0
            self.progress.bar_style = ""
            self.progress_label.value = f"0 / {total}"
            self.say(f"auditing {total} rows...", "info")

    def _on_result(self, _result: DomainResult) -> None:
        # One widget update per domain would flood the page on big files:
        # move the bar at most every PROGRESS_EVERY seconds, and at the end.
        self._done += 1
        now = time.monotonic()
        if now - self._shown_at < PROGRESS_EVERY and \
                self._done < self.progress.max:
            return
        self._shown_at = now
        self.progress.value = self._done
        self.progress_label.value = f"{self._done} / {self.progress.max}"

    def show_results(
        self, results: Sequence[DomainResult], info: RunInfo
    ) -> None:
        """Draw the table, fill the details list, say how it went."""
        self.results, self.info = list(results), info
        self._dicts = [result_to_dict(r) for r in results]
        self.progress.bar_style = "success"
        self.table.value = results_html(self._dicts)
        self.say(*self._summary_message())

        self.choice.rows = max(2, min(8, len(results)))
        self.choice.options = [
            (f"{d['row']}. {d['domain'] or d['input']} · {d['status']}",
             index)
            for index, d in enumerate(self._dicts[:TABLE_LIMIT])
        ]
        self.details_box.layout.display = "flex" if results else "none"
        self.save_box.layout.display = "flex" if results else "none"
        self.save_button.disabled = not results
        if results:
            self.choice.value = 0
            self.select(0)

    def _summary_message(self) -> tuple[str, str]:
        statuses = [d["status"] for d in self._dicts]
        audited = [s for s in statuses if s != "input-error"]
        if not audited:
            return "no row could be audited: see the reasons below", "error"
        if all(s == "dns-error" for s in audited):
            first = next(d for d in self._dicts if d["status"] == "dns-error")
            return (f"DNS unreachable: every lookup failed "
                    f"({first['reason']}). Check the nameservers or the "
                    "network, then audit again.", "error")
        ok = statuses.count("authorised")
        return (f"{len(statuses)} rows audited: {ok} authorised, "
                f"{len(statuses) - ok} need attention", "ok")

    def summary(self) -> pd.DataFrame:
        """The last run as the flat table of ``summary.csv``."""
        return summary_frame(self._dicts)

    def select(self, index: int) -> None:
        """Show the details of the result at ``index`` (0-based)."""
        data = self._dicts[index]
        self.detail.value = detail_html(data)
        self.more.value = more_html(data)

        proposal = data.get("proposal") or {}
        record = proposal.get("console_value") or proposal.get("record")
        self.proposal.value = str(record or "")
        self.zone_line.value = str(proposal.get("zone_line") or "")
        text, kind = proposal_state(data)
        self.proposal_note.value = message_html(text, kind) if text else ""
        self.proposal_records.layout.display = "flex" if record else "none"

    def _on_choice(self, change: Mapping[str, Any]) -> None:
        if change["new"] is not None:
            self.select(change["new"])

    # ---------------------------------------------------------------- save

    def start_save(self, _button: Any = None) -> asyncio.Task[Any] | None:
        """The *Save outputs* button: start :meth:`save` on the loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save_message.value = message_html(
                "no running event loop: call `await tool.save()`", "error")
            return None
        self.task = loop.create_task(self.save())
        return self.task

    async def save(self, folder: str | Path | None = None) -> dict[str, Path]:
        """Write the last run as the batch outputs and the HTML report.

        Returns
        -------
        dict
            The paths written (``json``, ``csv``, ``xlsx``, ``html``);
            empty when nothing could be written (the message says why).
        """
        info = self.info
        if not self.results or info is None:
            self.save_message.value = message_html("audit first", "error")
            return {}
        out = Path(folder or self.out_dir.value.strip() or ".").expanduser()
        self.save_button.disabled = True
        self.save_message.value = message_html(f"saving to {out}...")
        try:
            paths = await self._write(out, info)
        finally:
            self.save_button.disabled = False
        return paths

    async def _write(self, out: Path, info: RunInfo) -> dict[str, Path]:
        try:
            paths = write_outputs(self.results, info, out)
        except OSError as exc:
            self.save_message.value = message_html(
                f"cannot write to {out}: {exc.strerror or exc}", "error")
            return {}

        kind, note = "ok", ""
        loop = asyncio.get_running_loop()
        try:
            paths["html"] = await loop.run_in_executor(None, _render, out)
        except (AuditError, ImportError) as exc:
            kind, note = "warn", f" (no report.html: {exc})"
        names = ", ".join(p.name for p in paths.values())
        self.save_message.value = message_html(
            f"saved {names} in {out.resolve()}{note}", kind)
        return paths

    # ----------------------------------------------------------- allowlist

    def check_allowlist(self, _button: Any = None) -> None:
        """Compare the pasted addresses with the region's allowlist IPs."""
        if self.allow_region.value is None:
            self._allow_error("choose a region first")
            return
        try:
            entries = _pasted_entries(self.allow_text.value)
            check = check_allowlist(entries, self.allow_region.value)
        except AuditError as exc:
            self._allow_error(str(exc))
            return

        self._allow_check = check
        self.allow_result.value = allowlist_html(check.to_dict())
        self._show_additions()

    def _allow_error(self, text: str) -> None:
        self._allow_check = None
        self.allow_result.value = message_html(text, "error")
        self.allow_additions_box.layout.display = "none"

    def _show_additions(self) -> None:
        check = self._allow_check
        text = format_additions(check.missing, self.allow_style.value,
                                check.region) if check is not None else ""
        self.allow_additions.value = text
        self.allow_additions_box.layout.display = "flex" if text else "none"


def _pasted_entries(text: str) -> list[str]:
    """Read pasted allowlist text as :func:`read_allowlist` reads a file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pasted.txt"
        path.write_text(text, encoding="utf-8")
        return read_allowlist(path)


def allowlist_html(data: Mapping[str, Any]) -> str:
    """The allowlist check: one row per CXone address, then the notes.

    Parameters
    ----------
    data
        :meth:`cxone_audit.allowlist.AllowlistResult.to_dict` output.
    """
    missing = len(data["missing"])
    accepted = len(data["ips"]) - missing
    head = message_html(
        f"{data['region']}: {accepted} of {len(data['ips'])} CXone allowlist "
        f"addresses accepted, {missing} missing ({data['entries']} entries "
        "read)", "warn" if missing else "ok")
    rows = [
        (f'<span class="cxa-mono">{_e(c["ip"])}</span>',
         badge(c["status"], STATUS_COLOURS[_COVERAGE_STATUS[c["status"]]]),
         f'<span class="cxa-mono">{_e(c["entry"] or c["refused_by"])}'
         "</span>" + (" (refuses it)" if c["refused_by"] else ""))
        for c in data["ips"]
    ]
    table = _table(("CXone address", "state", "entry"), rows)
    return head + table + _allowlist_notes(data)


#: The status colour each coverage state borrows.
_COVERAGE_STATUS = {"present": "authorised", "covered": "authorised",
                    "missing": "not-authorised"}


def _allowlist_notes(data: Mapping[str, Any]) -> str:
    notes = [f"{e['entry']}: holds {', '.join(e['ips'])} of "
             f"{', '.join(e['regions'])}" for e in data["other_region"]]
    notes += [f"{e['entry']}: {e['reason']}"
              for e in (*data["unparsed"], *data["ignored"])]
    notes += [f"{entry}: IPv6 (CXone's tables list IPv4 addresses only)"
              for entry in data["ipv6"]]
    notes += list(data["warnings"])
    if not notes:
        return ""
    items = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return f'<div class="cxa-h">Notes</div><ul style="margin:2px 0">{items}</ul>'


def _render(out: Path) -> Path:
    """Render report.html in a worker thread (papermill starts a kernel)."""
    from .report import render_report

    return render_report(out)

