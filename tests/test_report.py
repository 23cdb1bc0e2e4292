"""The HTML batch report: papermill really runs the notebook.

One small run (a tiny zone audited offline, with hostile TXT records, a
hostile domain cell and a hostile spreadsheet column) is rendered once for
the module; the checks read the page as text and through an HTML parser.
The browser checks are in ``test_report_browser.py``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from cxone_audit import report
from cxone_audit.allowlist import allowlist_section, load_allowlist
from cxone_audit.audit import STATUSES
from cxone_audit.errors import ReportError
from tests.reportdata import (
    ALLOWLIST_CELLS,
    ALLOWLISTS,
    HOSTILE_CELL,
    HOSTILE_CELL_IMG,
    HOSTILE_IMG,
    HOSTILE_SCRIPT,
    INPUT_ROWS,
    audited_results,
    scaled_results,
    write_results,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "batch_report.ipynb"
HOSTILE = [HOSTILE_SCRIPT, HOSTILE_IMG, HOSTILE_CELL, HOSTILE_CELL_IMG]


class _Elements(HTMLParser):
    """Every start tag of a page, and the text of each script."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[tuple[dict[str, str], str]] = []
        self._script: dict[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = {k: v or "" for k, v in attrs}
        self.tags.append((tag, values))
        if tag == "script":
            self._script, self._text = values, []

    def handle_data(self, data):
        if self._script is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._text)))
            self._script = None


def _elements(page: str) -> _Elements:
    parser = _Elements()
    parser.feed(page)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    write_results(audited_results(), out)
    path = report.render_report(out)
    return path, path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def page(rendered):
    return rendered[1]


def _details(page: str) -> dict:
    """The details data of a small run: its head and its one chunk."""
    elements = {}
    for attrs, text in _elements(page).scripts:
        name = attrs.get("id", "")
        if name == "cxa-data" or name.startswith("cxa-chunk-"):
            assert attrs["type"] == "application/json"  # a small run
            elements[name] = json.loads(text)
    assert "cxa-data" in elements, "no details JSON in the page"
    assert set(elements) <= {"cxa-data", "cxa-chunk-0"}
    part = elements.get("cxa-chunk-0", {"answers": [], "domains": []})
    return {**elements["cxa-data"], **part}


def _table_rows(page: str) -> list[list]:
    """The rows itables embedded for the domains table."""
    match = re.search(r'"data_json": ("(?:[^"\\]|\\.)*")', page)
    assert match, "no itables data in the page"
    return json.loads(json.loads(match.group(1)))


# -- the rendered page ---------------------------------------------------


def test_report_is_one_html_file_next_to_the_results(rendered):
    path, page = rendered

    assert path == path.parent / "report.html"
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert not list(path.parent.glob(".report.html.*"))


def test_page_references_nothing_outside_itself(page):
    assert report.find_remote_references(page) == []

    # The same, independently of the checker: nothing a browser would load
    # on its own names anything but data: (itables' bundle is inline).
    for tag, attrs in _elements(page).tags:
        for name in ("src", "href"):
            if tag in ("script", "link", "img", "iframe") and name in attrs:
                assert attrs[name].startswith("data:"), (tag, attrs)


def test_page_holds_no_code_and_no_prompts(page):
    classes = {c for _, a in _elements(page).tags
               for c in a.get("class", "").split()}

    assert not {"jp-InputPrompt", "jp-OutputPrompt", "jp-CodeMirrorEditor",
                "highlight"} & classes
    assert "load_for_report" not in page


def test_hostile_text_is_never_markup(page):
    for text in HOSTILE:
        assert text not in page

    elements = _elements(page)
    assert not [a for _, a in elements.tags if "onerror" in a]
    assert not [a for t, a in elements.tags
                if t == "img" and not a.get("src", "").startswith("data:")]
    # Injected markup would have made script elements of its own.
    assert not [s for _, s in elements.scripts
                if s.strip() in ("alert(1)", "alert(2)")]


def test_hostile_text_reaches_the_details_as_data(page):
    domains = {d["row"]: d for d in _details(page)["domains"]}

    assert domains[4]["spf"]["record"] == f"v=spf1 {HOSTILE_SCRIPT} -all"
    assert HOSTILE_IMG in domains[5]["spf"]["record"]
    assert domains[2]["columns"]["Owner"] == HOSTILE_CELL
    assert domains[4]["columns"]["Owner"] == HOSTILE_CELL_IMG
    assert domains[2]["dmarc"]["note"] == HOSTILE_IMG


def test_every_row_is_in_the_table_and_the_details(page):
    rows = len(INPUT_ROWS)

    table = _table_rows(page)
    assert [r[0] for r in table] == list(range(1, rows + 1))
    details = _details(page)["domains"]
    assert [d["row"] for d in details] == list(range(1, rows + 1))


def test_hostile_cells_are_escaped_in_the_table(page):
    cells = [cell for row in _table_rows(page) for cell in row]

    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in cells
    assert HOSTILE_CELL not in cells


def test_evidence_is_shared_between_domains(page):
    details = _details(page)
    answers = details["answers"]

    keys = [json.dumps(a, sort_keys=True) for a in answers]
    assert len(keys) == len(set(keys))
    good = [d for d in details["domains"]
            if d["domain"] == "good.example.test" and d["evidence"]][0]
    names = {answers[i]["name"] for i in good["evidence"]}
    assert {"good.example.test", "_spf.good.example.test"} <= names
    duplicate = [d for d in details["domains"]
                 if d["domain"] == "good.example.test" and not d["evidence"]]
    assert duplicate  # the duplicate row asked nothing


def test_run_metadata_and_status_meanings_are_shown(page):
    assert "zone file example.test (tests)" in page
    assert "domains.xlsx" in page
    assert "DNS queries sent" in page
    for meaning in STATUSES.values():
        assert report.html.escape(meaning) in page


def test_counts_chart_is_an_embedded_png(page):
    images = [a for t, a in _elements(page).tags if t == "img"]

    charts = [a for a in images
              if a["src"].startswith("data:image/png;base64,")]
    assert len(charts) == 1
    assert "spf-error 2" in charts[0]["alt"]
    assert "authorised 1" in charts[0]["alt"]


def test_optional_checks_are_carried_to_the_details(page):
    partly = [d for d in _details(page)["domains"] if d["row"] == 2][0]

    assert partly["findings"][0]["code"] == "spf-softfail-all"
    assert partly["proposal"]["record"].startswith("v=spf1 ")
    assert "dmarc" in partly


# -- the notebook as committed -------------------------------------------


def _check_clean(notebook: nbformat.NotebookNode) -> None:
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == []
        assert cell.execution_count is None
        # No logic in the notebook: a few lines that call the library.
        assert len(cell.source.splitlines()) <= 5, cell.source
        assert not re.search(r"^\s*(def|class|for|while|if|with)\b",
                             cell.source, re.MULTILINE), cell.source

    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert tagged[0].source.startswith("results_path =")


def test_notebook_file_has_no_outputs_and_no_logic():
    _check_clean(nbformat.read(NOTEBOOK, as_version=4))


def test_notebook_in_git_has_no_outputs():
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    shown = subprocess.run(
        [git, "show", "HEAD:notebooks/batch_report.ipynb"], cwd=ROOT,
        capture_output=True, text=True, check=False,
    )
    if shown.returncode != 0:
        pytest.skip("the notebook is not committed yet")
    _check_clean(nbformat.reads(shown.stdout, as_version=4))


def test_a_run_without_rows_renders(tmp_path):
    write_results([], tmp_path)

    page = report.render_report(tmp_path).read_text(encoding="utf-8")
    assert report.find_remote_references(page) == []
    assert _table_rows(page) == []
    assert _details(page)["domains"] == []


# -- failures -------------------------------------------------------------


def test_missing_results_raise_report_error(tmp_path):
    with pytest.raises(ReportError, match="cannot read results"):
        report.render_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_broken_results_raise_report_error(tmp_path):
    (tmp_path / "results.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ReportError, match="cannot read results"):
        report.render_report(tmp_path)

    (tmp_path / "results.json").write_text('{"run": {}}', encoding="utf-8")
    with pytest.raises(ReportError, match="no 'domains' list"):
        report.render_report(tmp_path)


def test_a_failing_notebook_cell_raises_report_error(tmp_path):
    # Rows without their fields: the table cell fails inside the kernel.
    document = {"run": {}, "domains": [{"row": 1, "status": "authorised"}]}
    (tmp_path / "results.json").write_text(json.dumps(document),
                                           encoding="utf-8")

    with pytest.raises(ReportError, match="report notebook failed in cell"):
        report.render_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


# -- pieces ----------------------------------------------------------------


@pytest.mark.parametrize("snippet", [
    '<script src="https://cdn.example/x.js"></script>',
    '<script src="//cdn.example/x.js"></script>',
    '<script src="local.js"></script>',
    '<link rel="stylesheet" href="http://cdn.example/x.css">',
    '<link rel="icon" href="favicon.ico">',
    '<img src="https://track.example/p.gif">',
    '<img srcset="data:image/png;base64,AA 1x, https://x.example/2.png 2x">',
    '<iframe src="https://x.example/"></iframe>',
    '<style>body { background: url("https://x.example/bg.png"); }</style>',
    "<style>@import 'https://x.example/theme.css';</style>",
    "<style>@import url(//x.example/theme.css);</style>",
    '<div style="background:url(https://x.example/a.png)"></div>',
    '<script type="module">import { a } from "https://x.example/m.js";'
    "</script>",
    "<script>const m = await import('https://x.example/m.js');</script>",
    '<meta http-equiv="refresh" content="0; url=https://x.example/">',
])
def test_remote_references_are_found(snippet):
    found = report.find_remote_references(f"<html><body>{snippet}</body>")
    assert len(found) == 1, found


def test_every_candidate_of_a_srcset_is_checked():
    page = '<img srcset="a.png, https://x.example/b.png 2x">'
    assert len(report.find_remote_references(page)) == 2


@pytest.mark.parametrize("snippet", [
    '<script src="data:text/javascript,1"></script>',
    '<img src="data:image/png;base64,AAAA">',
    '<a href="https://itables.org/">help</a>',
    "<style>/* url(https://x.example/commented.png) */ a { color: red }"
    "</style>",
    '<style>a { background: url("data:image/svg+xml;utf8,<svg/>") }</style>',
    "<script>const m = await import(URL.createObjectURL(blob));</script>",
    '<script type="application/json">{"src": "https://x.example/"}'
    "</script>",
    "<p>&lt;script src=https://x.example/a.js&gt;&lt;/script&gt;</p>",
    '<svg><use href="#icon"></use></svg>',
])
def test_inline_content_and_links_are_not_references(snippet):
    assert report.find_remote_references(f"<html>{snippet}</html>") == []


def test_script_json_cannot_end_its_element():
    value = {"x": "</script><script>alert(1)</script>", "y": "a & b\u2028"}

    text = report._script_json(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text
    assert json.loads(text) == value


def test_large_details_are_embedded_gzipped(tmp_path):
    results = scaled_results(audited_results(), 1500)
    data = report.load_for_report(write_results(results, tmp_path))
    payload = report.details_payload(data)
    assert len(report._script_json(payload)) > report.PLAIN_JSON_LIMIT

    panel = report.details_html(data)
    assert 'data-encoding="gzip+base64"' in panel
    assert len(panel) < len(report._script_json(payload)) / 4
    assert report.read_data_element(panel) == json.loads(
        json.dumps(payload))


def test_small_details_are_plain_json(page):
    read = report.read_data_element(page)
    details = _details(page)

    assert read["chunks"] == [{"answers": details["answers"],
                               "domains": details["domains"]}]
    assert read["index"] == details["index"]


def test_details_come_in_chunks_with_the_catalogue_once(tmp_path):
    results = scaled_results(audited_results(), 5)
    data = report.load_for_report(write_results(results, tmp_path))

    payload = report.details_payload(data)

    rows = len(data.domains)
    assert [len(c["domains"]) for c in payload["chunks"]] == [rows]
    assert [r[0] for r in payload["index"]] == [
        d["row"] for d in data.domains]
    # Every finding reads back whole from the catalogue and its own fields.
    for whole, chunked in zip(data.domains, payload["chunks"][0]["domains"],
                              strict=True):
        back = [{**payload["catalogue"][f["code"]], **f}
                for f in chunked["findings"]]
        assert back == whole["findings"]
        assert all("explanation" not in f for f in chunked["findings"])


def test_a_large_run_is_split_into_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "CHUNK_ROWS", 4)
    data = report.load_for_report(write_results(audited_results(), tmp_path))

    payload = report.details_payload(data)
    read = report.read_data_element(report.details_html(data))

    sizes = [len(c["domains"]) for c in payload["chunks"]]
    assert sizes[:-1] == [4] * (len(sizes) - 1) and 0 < sizes[-1] <= 4
    assert sum(sizes) == len(data.domains)
    assert read == json.loads(json.dumps(payload))
    # Evidence indexes point into the chunk's own answers.
    for chunk in payload["chunks"]:
        for domain in chunk["domains"]:
            assert all(0 <= i < len(chunk["answers"])
                       for i in domain["evidence"])


def test_domains_table_has_every_row_and_pass_through_columns(tmp_path):
    data = report.load_for_report(write_results(audited_results(), tmp_path))

    frame = report.domains_table(data)
    assert list(frame["row"]) == list(range(1, len(INPUT_ROWS) + 1))
    assert list(frame.columns[:5]) == ["row", "domain", "region", "status",
                                       "reason"]
    assert frame["Owner"].tolist() == [r[2] for r in INPUT_ROWS]
    # A row without a usable domain shows its cell as written.
    assert frame.loc[frame["row"] == 7, "domain"].item() == "<b>bad</b>"


def test_allowlist_of_a_row_is_in_the_details_and_the_table(tmp_path):
    data = report.load_for_report(write_results(audited_results(), tmp_path))

    (domain, cell), = ALLOWLIST_CELLS.items()
    row = next(d for d in data.domains if d["domain"] == domain)
    expected = allowlist_section(load_allowlist(ALLOWLISTS / cell, cell),
                                 row["region"])
    assert row["allowlist"] == expected
    assert [d["domain"] for d in data.domains if "allowlist" in d] == [domain]

    frame = report.domains_table(data).set_index("row")
    missing = frame["allowlist IPs missing"]
    assert missing[row["row"]] == "; ".join(expected["missing"])
    assert set(missing.drop(row["row"])) == {""}


def test_run_allowlist_is_a_run_fact_only_when_there_was_one():
    with_one = report.ReportData(Path("results.json"),
                                 {"allowlist": "<b>gw.txt</b>"}, [])
    without = report.ReportData(Path("results.json"), {}, [])

    assert "allowlist of the run" in report.run_metadata_html(with_one)
    assert "&lt;b&gt;gw.txt&lt;/b&gt;" in report.run_metadata_html(with_one)
    assert "allowlist" not in report.run_metadata_html(without)


def test_counts_cover_every_status(tmp_path):
    data = report.load_for_report(write_results(audited_results(), tmp_path))

    assert list(data.counts) == list(STATUSES)
    assert sum(data.counts.values()) == len(INPUT_ROWS)
    assert data.counts == data.run["counts"]
