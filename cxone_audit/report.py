"""The HTML report of a batch run: one self-contained file that works offline.

:func:`render_report` runs the notebook ``batch_report.ipynb`` with papermill
over a run's ``results.json``, turns the executed notebook into
``report.html`` with nbconvert (no code, no prompts) and checks that the page
loads nothing from outside itself. The notebook holds no logic: each cell
calls one function of this module and displays what it returns.

Text in a result comes from strangers (DNS TXT records, spreadsheet cells),
so it never reaches the page as markup:

* HTML written here escapes every value (:func:`html.escape`);
* the domains table keeps itables' ``allow_html=False``;
* the per-domain details travel as data in a ``<script>`` element (JSON
  whose ``<``, ``>`` and ``&`` are written as JSON escapes, or, for large
  runs, that JSON gzipped in base64) and the page builds them with
  ``textContent``. There is no HTML element per row, so 10,000 rows cost
  one table and one panel.

Nothing may load from the network: the nbconvert template empties the blocks
that pull require.js, MathJax, mermaid and the widget manager from CDNs,
itables runs in its offline mode, and :func:`find_remote_references` fails
the build if a loadable reference to anything outside the file is left.
"""

from __future__ import annotations

import base64
import gzip
import html
import io
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from .audit import STATUSES
from .errors import ReportError
from .outputs import REPORT_NAME, read_results, replacing, summary_frame

__all__ = [
    "PLAIN_JSON_LIMIT",
    "STATUS_COLOURS",
    "TABLE_OPTIONS",
    "ReportData",
    "counts_chart",
    "details_html",
    "details_payload",
    "domains_table",
    "execute_notebook",
    "find_remote_references",
    "init_interactive_tables",
    "load_for_report",
    "notebook_html",
    "page_css",
    "read_data_element",
    "render_report",
    "run_metadata_html",
    "show_domains_table",
    "status_summary_html",
]

log = logging.getLogger(__name__)

#: One colour per status, shared by the chart, the legend and the table.
STATUS_COLOURS: dict[str, str] = {
    "input-error": "#6b7280",
    "dns-error": "#2563eb",
    "no-spf": "#7c3aed",
    "spf-error": "#be185d",
    "not-authorised": "#dc2626",
    "partly-authorised": "#d97706",
    "authorised": "#16a34a",
}

#: Details data larger than this (bytes of JSON) is embedded gzipped.
PLAIN_JSON_LIMIT = 1_000_000

#: The id of the domains table in the page (details.js listens to it).
TABLE_ID = "cxa-domains"

#: itables options of the domains table. ``maxBytes=0``: never drop rows
#: (the default keeps 64 KB); ``text_in_header_can_be_selected=False``: a
#: click on a column name sorts; ``allow_html=False``: cells are text.
TABLE_OPTIONS: dict[str, Any] = {
    "maxBytes": 0,
    "allow_html": False,
    "text_in_header_can_be_selected": False,
    "showIndex": False,
    "pageLength": 25,
    "lengthMenu": [10, 25, 100, 500],
    "classes": "display compact",
    "style": "table-layout:auto;width:100%;margin:0",
    "display_logo_when_loading": False,
    "order": [],
}

#: Section titles for the optional parts of a result.
SECTION_TITLES = {
    "dmarc": "DMARC",
    "mx": "MX",
    "ses": "Amazon SES",
    "allowlist": "Allowlist",
}

#: Summary columns shown in the table, in order, with their headings;
#: pass-through spreadsheet columns follow under their own names.
_TABLE_COLUMNS = {
    "row": "row",
    "domain": "domain",
    "region": "region",
    "status": "status",
    "reason": "reason",
    "spf_record": "SPF record",
    "dns_lookups": "DNS lookups",
    "void_lookups": "void lookups",
    "findings": "findings",
    "proposed_record": "proposed record",
    "allowlist_missing": "allowlist IPs missing",
    "notes": "input notes",
}
_NOT_IN_TABLE = {"input", "ips_not_passing"}
_WIDE_COLUMNS = ("reason", "SPF record", "findings", "proposed record")

_NOTEBOOK = "batch_report.ipynb"
_KERNEL = "python3"
_EXECUTION_TIMEOUT = 900


@dataclass(frozen=True)
class ReportData:
    """A run's results, as the report reads them.

    Attributes
    ----------
    path
        The ``results.json`` read.
    run
        The run's metadata (``results.json`` key ``run``).
    domains
        One object per input row (key ``domains``).
    """

    path: Path
    run: dict[str, Any]
    domains: list[dict[str, Any]]

    @property
    def counts(self) -> dict[str, int]:
        """Rows per status, every status present, most urgent first."""
        found = Counter(d.get("status") for d in self.domains)
        return {status: found.get(status, 0) for status in STATUSES}


def load_for_report(results_path: str | Path) -> ReportData:
    """Read ``results.json`` (or the folder that holds it).

    Raises
    ------
    ReportError
        If the file is missing, not JSON, or not a results document.
    """
    try:
        document = read_results(results_path)
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read results {results_path}: {exc}") from exc

    if not isinstance(document, dict) or not isinstance(
        document.get("domains"), list
    ):
        raise ReportError(
            f"{results_path} is not a cxone-audit results.json "
            "(no 'domains' list)"
        )
    path = Path(results_path)
    return ReportData(
        path=path / "results.json" if path.is_dir() else path,
        run=dict(document.get("run") or {}),
        domains=document["domains"],
    )


# -- page parts ---------------------------------------------------------


def _e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def _fact(label: str, value: Any) -> str:
    shown = "\u2014" if value in (None, "") else value
    if isinstance(shown, int) and not isinstance(shown, bool):
        shown = f"{shown:,}"
    return (f'<div class="cxa-fact"><div class="cxa-k">{_e(label)}</div>'
            f'<div class="cxa-v">{_e(shown)}</div></div>')


def _run_facts(run: Mapping[str, Any]) -> list[tuple[str, Any]]:
    dns = run.get("dns") or {}
    facts = [
        ("started", _when(run.get("started"))),
        ("finished", _when(run.get("finished"))),
        ("duration", _seconds(run.get("elapsed_seconds"))),
        ("input file", run.get("input")),
        ("DNS answers from", run.get("resolver")),
        ("default region", run.get("default_region")),
        ("rows", run.get("rows")),
        ("kit version", run.get("kit_version")),
        ("CXone IP tables of", run.get("region_table_taken")),
    ]
    labels = {
        "queries_sent": "DNS queries sent",
        "cache_hits": "answers from cache",
        "temporary_failures": "temporary DNS failures",
        "distinct_questions": "distinct DNS questions",
    }
    for key, value in dns.items():
        facts.append((labels.get(key, key.replace("_", " ")), value))
    if "allowlist" in run:
        facts.append(("allowlist of the run", run["allowlist"]))
    return facts


def _when(value: Any) -> str:
    """Write an ISO 8601 time as ``2026-12-03 19:32:44 UTC``."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return "" if value is None else str(value)
    zone = moment.strftime("%z")
    suffix = " UTC" if zone in ("+0000", "") else f" {zone}"
    return moment.strftime("%Y-%m-%d %H:%M:%S") + suffix


def _seconds(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return ""
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def run_metadata_html(data: ReportData) -> str:
    """Build the page header: title and what the run was (text escaped)."""
    facts = "".join(_fact(k, v) for k, v in _run_facts(data.run))
    source = data.run.get("input") or data.path.name
    return (
        '<header class="cxa cxa-header">'
        "<h1>CXone SPF audit</h1>"
        f'<p class="cxa-subtitle">{len(data.domains):,} rows from '
        f"{_e(source)}: does each domain's SPF record authorise every "
        "CXone SPF IP of its region (RFC 7208 check_host)?</p>"
        f'<div class="cxa-facts">{facts}</div>'
        "</header>"
    )


def counts_chart(data: ReportData) -> Figure:
    """Draw rows per status as bars in :data:`STATUS_COLOURS`."""
    counts = data.counts
    figure = Figure(figsize=(6.0, 2.9), layout="constrained")
    axes = figure.subplots()

    labels = list(counts)
    bars = axes.barh(labels, list(counts.values()),
                     color=[STATUS_COLOURS[s] for s in labels], height=0.66)
    axes.invert_yaxis()
    axes.bar_label(bars, labels=[f"{n:,}" for n in counts.values()],
                   padding=4, fontsize=9, color="#1f2937")

    axes.set_xlabel("rows", color="#6b7280", fontsize=9)
    axes.tick_params(axis="both", labelsize=9, colors="#374151", length=0)
    axes.margins(x=0.12)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.spines["bottom"].set_color("#d1d5db")
    axes.xaxis.get_major_locator().set_params(integer=True)
    return figure


def _figure_img(figure: Figure, alt: str, width: int) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=144, facecolor="white")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<img src="data:image/png;base64,{encoded}" alt="{_e(alt)}" '
            f'width="{width}">')


def status_summary_html(data: ReportData) -> str:
    """Show the counts chart beside a legend that explains every status."""
    counts = data.counts
    total = sum(counts.values()) or 1
    rows = "".join(
        "<tr>"
        f'<td><span class="cxa-swatch" style="background:'
        f'{STATUS_COLOURS[status]}"></span>{_e(status)}</td>'
        f"<td>{_e(STATUSES[status])}</td>"
        f'<td class="cxa-num">{count:,}</td>'
        f'<td class="cxa-num">{100 * count / total:.1f} %</td>'
        "</tr>"
        for status, count in counts.items()
    )
    alt = "Rows per status: " + ", ".join(
        f"{s} {n}" for s, n in counts.items())
    chart = _figure_img(counts_chart(data), alt, width=600)
    return (
        f'<section class="cxa cxa-card cxa-summary"><div>{chart}</div>'
        '<div class="cxa-legend"><table><thead><tr><th>status</th>'
        '<th>meaning</th><th class="cxa-num">rows</th>'
        '<th class="cxa-num">share</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div></section>"
    )


def domains_table(data: ReportData) -> pd.DataFrame:
    """One row per input row: the summary columns, pass-through last."""
    frame = summary_frame(data.domains)
    if frame.empty:
        return pd.DataFrame(columns=list(_TABLE_COLUMNS.values())[:5])

    # A row without a usable domain is shown by its cell as written.
    frame["domain"] = frame["domain"].where(frame["domain"] != "",
                                            frame["input"])
    first = [c for c in _TABLE_COLUMNS if c in frame.columns]
    rest = [c for c in frame.columns
            if c not in _TABLE_COLUMNS and c not in _NOT_IN_TABLE]
    shown = frame[first + rest].fillna("")
    headings = {c: _TABLE_COLUMNS[c] for c in first}
    clash = set(headings.values()) & set(rest)
    shown = shown.rename(columns={c: f"in:{c}" for c in clash})
    return shown.rename(columns=headings)


def init_interactive_tables() -> None:
    """Load itables' DataTables bundle into the page, offline.

    The output of the cell that calls this holds the bundle (about 1 MB);
    the tables further down need it.
    """
    from itables import init_notebook_mode

    init_notebook_mode(all_interactive=True, connected=False)


def _column_defs(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Status cells get a class per status; long text columns room."""
    from itables import JavascriptFunction

    columns = list(frame.columns)
    defs: list[dict[str, Any]] = []
    wide = [columns.index(c) for c in _WIDE_COLUMNS if c in columns]
    if wide:
        defs.append({"targets": wide, "className": "cxa-wide"})
    if "status" in columns:
        known = json.dumps(list(STATUSES))
        defs.append({
            "targets": columns.index("status"),
            "createdCell": JavascriptFunction(
                "function (td, cellData) { if (" + known
                + ".includes(cellData)) { td.classList.add("
                "'cxa-status-cell', 'cxa-t-' + cellData); } }"
            ),
            # Sorted most urgent first, as STATUSES lists them, not by name.
            "render": JavascriptFunction(
                "function (data, type) { if (type === 'sort' || type === "
                "'type') { const i = " + known + ".indexOf(data); "
                "return i < 0 ? " + str(len(STATUSES)) + " : i; } "
                "return data; }"
            ),
        })
    return defs


def show_domains_table(data: ReportData) -> None:
    """Display the sortable, searchable table of every row (itables)."""
    from itables import show

    frame = domains_table(data)
    show(frame, table_id=TABLE_ID, columnDefs=_column_defs(frame),
         **TABLE_OPTIONS)


#: Domains per chunk of the details data. The page unpacks a chunk when a
#: row in it is first shown, so a large run opens without unpacking all of
#: it, and no single JavaScript string has to hold every row (V8 strings
#: stop at about 512 MB: 100,000 domains of details are more).
CHUNK_ROWS = 2000

#: Finding fields that come from the catalogue and repeat for every row.
_CATALOGUE_FIELDS = ("family", "title", "explanation", "action", "rfc")


def details_payload(data: ReportData) -> dict[str, Any]:
    """Gather the data the details panel reads.

    Returns
    -------
    dict
        ``statuses`` and ``titles`` (the words the page shows), the
        ``catalogue`` text of each finding code met, ``chunk_rows``, an
        ``index`` (``[row, domain, input, region]`` per domain, for the
        picker) and ``chunks``: the domains, :data:`CHUNK_ROWS` at a time.
        In a chunk every DNS answer is stored once in ``answers`` and a
        domain's ``evidence`` lists indexes into it (most domains share
        their providers' include chains); a finding keeps only what its
        catalogue entry does not already say.
    """
    catalogue: dict[str, dict[str, Any]] = {}
    chunks = []
    for start in range(0, len(data.domains), CHUNK_ROWS):
        part = data.domains[start:start + CHUNK_ROWS]
        chunks.append(_chunk(part, catalogue))
    index = [[d.get("row"), d.get("domain"), d.get("input"), d.get("region")]
             for d in data.domains]
    return {"statuses": STATUSES, "titles": SECTION_TITLES,
            "catalogue": catalogue, "chunk_rows": CHUNK_ROWS,
            "index": index, "chunks": chunks}


def _chunk(
    domains: Sequence[dict[str, Any]], catalogue: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """One chunk of the details: its domains and the answers they used."""
    answers: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    compact = []
    for domain in domains:
        refs = []
        for answer in domain.get("evidence") or []:
            key = json.dumps(answer, sort_keys=True)
            if key not in seen:
                seen[key] = len(answers)
                answers.append(answer)
            refs.append(seen[key])
        findings = [_compact_finding(f, catalogue)
                    for f in domain.get("findings") or []]
        compact.append({**domain, "evidence": refs, "findings": findings})
    return {"answers": answers, "domains": compact}


def _compact_finding(
    finding: dict[str, Any], catalogue: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The finding without the catalogue text it shares with its code."""
    entry = catalogue.setdefault(finding["code"], {
        k: finding[k] for k in _CATALOGUE_FIELDS if k in finding})
    return {k: v for k, v in finding.items()
            if k not in entry or entry[k] != v}


def _script_json(value: Any) -> str:
    """Write JSON that cannot end or break out of a ``<script>`` element.

    ``<``, ``>`` and ``&`` only occur inside JSON strings, where their
    JSON escapes (``u003c``...) read back the same; U+2028 and U+2029 are
    escaped too, for old JavaScript parsers.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"),
                         ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(
        "report_assets", name).read_text(encoding="utf-8")


def _data_element(payload: Mapping[str, Any]) -> str:
    """Build the ``<script>`` elements that carry the details to the page.

    ``cxa-data`` holds everything but the chunks, as JSON; each chunk
    follows as ``cxa-chunk-N``. A chunk up to :data:`PLAIN_JSON_LIMIT`
    bytes is JSON as is; above, it is gzip in base64 (about a tenth of the
    size: findings and provider records repeat from domain to domain),
    which the page unpacks with the browser's DecompressionStream.
    """
    head = {k: v for k, v in payload.items() if k != "chunks"}
    elements = ['<script type="application/json" id="cxa-data">'
                f"{_script_json(head)}</script>"]
    for number, chunk in enumerate(payload["chunks"]):
        elements.append(_chunk_element(f"cxa-chunk-{number}", chunk))
    return "".join(elements)


def _chunk_element(element_id: str, chunk: Mapping[str, Any]) -> str:
    # ASCII-only JSON (json's default), so its length is its size in bytes.
    text = json.dumps(chunk, separators=(",", ":"))
    if len(text) <= PLAIN_JSON_LIMIT:
        return (f'<script type="application/json" id="{element_id}">'
                f"{_script_json(chunk)}</script>")

    packed = gzip.compress(text.encode("ascii"), compresslevel=6, mtime=0)
    return (f'<script type="application/octet-stream" id="{element_id}" '
            'data-encoding="gzip+base64">'
            f'{base64.b64encode(packed).decode("ascii")}</script>')


_DATA_ELEMENT = re.compile(
    r'<script\b([^>]*\bid="(cxa-data|cxa-chunk-\d+)"[^>]*)>(.*?)</script>',
    re.DOTALL)


def read_data_element(page: str) -> dict[str, Any]:
    """Read the details payload back from a rendered report."""
    payload: dict[str, Any] | None = None
    chunks = []
    for match in _DATA_ELEMENT.finditer(page):
        attributes, name, text = match.groups()
        if 'data-encoding="gzip+base64"' in attributes:
            text = gzip.decompress(base64.b64decode(text)).decode("utf-8")
        if name == "cxa-data":
            payload = json.loads(text)
        else:
            chunks.append(json.loads(text))
    if payload is None:
        raise ReportError("the page holds no details data")
    return {**payload, "chunks": chunks}


def details_html(data: ReportData) -> str:
    """Build the per-domain details panel, filled in the page on demand.

    Returns a picker (a search box with suggestions), an empty panel, the
    results as data (see :func:`_data_element`) and the script that
    renders the chosen row with ``textContent``.
    """
    return (
        '<section class="cxa cxa-card" id="cxa-details">'
        '<div class="cxa-picker"><label for="cxa-pick">Domain</label>'
        '<input id="cxa-pick" type="search" list="cxa-pick-list" '
        'autocomplete="off" spellcheck="false" '
        'placeholder="type a domain or a row number">'
        '<datalist id="cxa-pick-list"></datalist></div>'
        '<div id="cxa-detail-body" aria-live="polite">'
        '<p class="cxa-hint">Choose a domain above, or click a row of the '
        "table, to see its SPF record, the verdict for each CXone SPF IP, "
        "the findings and the DNS answers used.</p></div>"
        f"{_data_element(details_payload(data))}"
        f"<script>{_asset('details.js')}</script>"
        "</section>"
    )


def page_css() -> str:
    """Return the report's style sheet, with rules per status colour."""
    rules = [_asset("report.css")]
    for status, colour in STATUS_COLOURS.items():
        rules.append(
            f".cxa-s-{status} {{ background: {colour}; }}\n"
            f"td.cxa-t-{status}::before {{ content: '\\25CF'; "
            f"color: {colour}; margin-right: 6px; }}"
        )
    return "\n".join(rules)


# -- remote references ---------------------------------------------------

#: Elements and attributes that make a browser fetch what they name.
_LOADING_ATTRS: dict[str, tuple[str, ...]] = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "image": ("href", "xlink:href"),
    "use": ("href", "xlink:href"),
    "iframe": ("src",),
    "frame": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "source": ("src", "srcset"),
    "track": ("src",),
    "audio": ("src",),
    "video": ("src", "poster"),
    "input": ("src",),
    "base": ("href",),
    "body": ("background",),
}
_INLINE = ("data:", "blob:", "#", "about:")
_JS_TYPES = ("", "text/javascript", "module", "application/javascript")
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_CSS_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)""", re.IGNORECASE)
# @import url(...) is found as a url(); this catches @import "...".
_CSS_IMPORT = re.compile(r"""@import\s+(['"])(.*?)\1""", re.IGNORECASE)
_SRCSET_URL = re.compile(r"[\s,]*([^\s,]\S*)")
_JS_IMPORT = re.compile(
    r"""\bimport\s*\(\s*(['"`])(.*?)\1"""
    r"""|\bimport\s+(?:[\w*{}\s,$]+\s+from\s+)?(['"])(.*?)\3""")
_REFRESH = re.compile(r"url\s*=\s*(\S+)", re.IGNORECASE)


def _loads_something(url: str) -> bool:
    target = url.strip().lower()
    return bool(target) and not target.startswith(_INLINE)


def _css_references(css: str) -> Iterator[str]:
    css = _CSS_COMMENT.sub("", css)
    for match in _CSS_URL.finditer(css):
        yield match.group(2)
    for match in _CSS_IMPORT.finditer(css):
        yield match.group(2)


def _js_references(script: str) -> Iterator[str]:
    for match in _JS_IMPORT.finditer(script):
        yield match.group(2) if match.group(2) is not None else match.group(4)


class _ReferenceFinder(HTMLParser):
    """Collect what a page would load: ``(where, url)`` pairs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []
        self._text: list[str] = []
        self._kind = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]
                        ) -> None:
        values = {name: value or "" for name, value in attrs}
        for name in _LOADING_ATTRS.get(tag, ()):
            if name in values:
                self._add(f"<{tag} {name}>", _srcset_urls(name, values[name]))
        if "style" in values:
            self._add(f"<{tag} style>", _css_references(values["style"]))
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            self._add("<meta refresh>",
                      _REFRESH.findall(values.get("content", "")))

        if tag == "style":
            self._kind = "css"
        elif tag == "script":
            is_js = values.get("type", "").strip().lower() in _JS_TYPES
            self._kind = "js" if is_js else "data"
        self._text = []

    def handle_data(self, data: str) -> None:
        if self._kind:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        text = "".join(self._text)
        if tag == "style" and self._kind == "css":
            self._add("<style>", _css_references(text))
        elif tag == "script" and self._kind == "js":
            self._add("<script> import", _js_references(text))
        if tag in ("style", "script"):
            self._kind, self._text = "", []

    def _add(self, where: str, urls: Any) -> None:
        self.found.extend((where, url) for url in urls
                          if _loads_something(url))


def _srcset_urls(name: str, value: str) -> list[str]:
    if name != "srcset":
        return [value]

    # HTML "parse a srcset attribute": a URL runs to the next space (data:
    # URLs hold commas); a URL ending in a comma has no descriptors,
    # otherwise descriptors run to the next comma.
    urls, pos = [], 0
    while match := _SRCSET_URL.match(value, pos):
        url, pos = match.group(1), match.end()
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            comma = value.find(",", pos)
            pos = len(value) if comma < 0 else comma + 1
        urls.append(url)
    return urls


def find_remote_references(page: str) -> list[str]:
    """Every reference in ``page`` that would make a browser load a file.

    Looks at the ``src``/``href`` of loading elements (script, link, img,
    iframe...), ``url()`` and ``@import`` in style sheets and ``style``
    attributes, ``import`` in scripts, and meta refresh. ``data:`` and
    ``blob:`` URLs and fragments stay inside the page and are allowed;
    anything else, remote or relative, is reported. Links (``<a href>``)
    load nothing by themselves and are not reported.

    Returns
    -------
    list of str
        ``"<where>: <url>"`` for each reference, in page order.
    """
    finder = _ReferenceFinder()
    finder.feed(page)
    finder.close()
    return [f"{where}: {url}" for where, url in finder.found]


# -- rendering -----------------------------------------------------------


def _notebook_text() -> str:
    """Read the report notebook: from the wheel, else the source tree."""
    packaged = resources.files(__package__).joinpath("notebooks", _NOTEBOOK)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    source = Path(__file__).resolve().parent.parent / "notebooks" / _NOTEBOOK
    try:
        return source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReportError(
            f"the report notebook {_NOTEBOOK} is missing from the package "
            f"and from {source.parent}"
        ) from exc


def execute_notebook(results_path: str | Path) -> Any:
    """Run the report notebook over ``results_path`` with papermill.

    Returns
    -------
    nbformat.NotebookNode
        The executed notebook.

    Raises
    ------
    ReportError
        If the kernel cannot start or a cell fails.
    """
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook = nbformat.reads(_notebook_text(), as_version=4)
    try:
        return papermill.execute_notebook(
            notebook, None,
            parameters={"results_path": str(Path(results_path).resolve())},
            kernel_name=_KERNEL, progress_bar=False,
            execution_timeout=_EXECUTION_TIMEOUT,
            store_widget_state=False,
            # The kernel's start-up notices are not the reader's business.
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
    except PapermillExecutionError as exc:
        raise ReportError(
            f"the report notebook failed in cell {exc.exec_count}: "
            f"{exc.ename}: {exc.evalue}"
        ) from exc
    except Exception as exc:  # kernel start-up and transport errors
        raise ReportError(f"cannot run the report notebook: {exc}") from exc


#: Extends nbconvert's ``lab`` template without anything that loads from a
#: CDN (require.js, MathJax, mermaid, the widget manager) and with our CSS.
_TEMPLATE = """\
{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_css -%}
<style type="text/css">
{{ resources.cxa_css }}
</style>
{%- endblock html_head_css -%}
"""


def _report_cells(notebook: Any) -> None:
    """Keep what a reader needs: no empty code cells, no stderr streams."""
    kept = []
    for cell in notebook.cells:
        if cell.cell_type == "code":
            for output in cell.outputs:
                if output.get("name") == "stderr":
                    log.warning("report notebook: %s", output.text.strip())
            cell.outputs = [o for o in cell.outputs
                            if o.get("name") != "stderr"]
            if not cell.outputs:
                continue
        kept.append(cell)
    notebook.cells = kept


def notebook_html(notebook: Any, title: str) -> str:
    """Export an executed notebook to one HTML page, without any code."""
    import jinja2
    from nbconvert import HTMLExporter

    _report_cells(notebook)
    notebook.metadata["title"] = title
    exporter = HTMLExporter(
        template_name="lab",
        template_file="cxone_report.html.j2",
        extra_loaders=[jinja2.DictLoader({"cxone_report.html.j2": _TEMPLATE})],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    try:
        page, _ = exporter.from_notebook_node(
            notebook, resources={"cxa_css": page_css()})
    except Exception as exc:  # nbconvert and jinja2 raise many kinds
        raise ReportError(f"cannot convert the report to HTML: {exc}") from exc
    return page


def _write_whole(path: Path, text: str) -> None:
    """Write through a temporary file, so no half report is ever left."""
    with replacing(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def render_report(out_dir: str | Path) -> Path:
    """Render ``out_dir/report.html`` from ``out_dir/results.json``.

    Parameters
    ----------
    out_dir
        A folder written by :func:`cxone_audit.outputs.write_outputs`.

    Returns
    -------
    Path
        The report written.

    Raises
    ------
    ReportError
        If the results cannot be read, the notebook fails, or the page
        would load anything from outside itself (nothing is written then).
    """
    out = Path(out_dir)
    data = load_for_report(out / "results.json")

    started = time.monotonic()
    notebook = execute_notebook(data.path)
    executed = time.monotonic()
    title = f"CXone SPF audit: {data.run.get('input') or out.name}"
    page = notebook_html(notebook, title)

    remote = find_remote_references(page)
    if remote:
        raise ReportError(
            "the report would load files from outside itself: "
            + "; ".join(remote[:5])
        )
    target = out / REPORT_NAME
    _write_whole(target, page)
    log.info("wrote %s (%d rows, %.0f kB; notebook %.1f s, html %.1f s)",
             target, len(data.domains), len(page) / 1024,
             executed - started, time.monotonic() - executed)
    return target
