"""The HTML report in a real browser: headless Chromium through Playwright.

A run of 2,000 rows (the tiny audited set of ``reportdata`` repeated under
numbered names) is rendered once; the page is opened from ``file://`` with
every request recorded and anything but ``file:``, ``data:`` and ``blob:``
aborted. Skipped when Chromium or Playwright is missing, unless
``CXONE_REQUIRE_BROWSER=1`` (then those tests fail instead).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cxone_audit import report
from cxone_audit.audit import STATUSES
from cxone_audit.findings import CATALOGUE
from cxone_audit.regions import allowlist_ips
from tests.reportdata import (
    ALLOWLIST_CELLS,
    HOSTILE_CELL,
    HOSTILE_CELL_IMG,
    HOSTILE_IMG,
    HOSTILE_SCRIPT,
    audited_results,
    scaled_results,
    write_results,
)

pytestmark = pytest.mark.browser

# More rows than one chunk of details holds, so the page must unpack the
# chunk a row is in.
ROWS = 2500
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
LOCAL_SCHEMES = ("file:", "data:", "blob:")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu",
    "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CXONE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"CXONE_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def _chromium() -> str:
    for candidate in (os.environ.get("CXONE_CHROMIUM"),
                      shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    _unavailable("no chromium executable found")
    raise AssertionError  # not reached


@dataclass
class Session:
    """An open report and everything the page did."""

    page: Any
    results: list
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_quiet(self) -> None:
        foreign = [u for u in self.requests
                   if not u.startswith(LOCAL_SCHEMES)]
        assert foreign == [], "the page asked the network"
        assert self.dialogs == [], "a dialog fired"
        assert self.errors == [], "the page raised"


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser-report")
    results = scaled_results(audited_results(), ROWS)
    write_results(results, out)
    return report.render_report(out), results


@pytest.fixture(scope="module")
def chromium():
    """The browser to use; checked before any report is rendered."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed")
    return _chromium()


@pytest.fixture(scope="module")
def session(chromium, report_file, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    path, results = report_file
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        page = context.new_page()
        seen = Session(page, results)
        _record(context, page, seen)

        page.goto(path.as_uri())
        page.wait_for_selector("#cxa-domains.dataTable tbody tr")
        page.wait_for_selector("#cxa-details[data-loaded]")
        yield seen
        context.close()


def _record(context: Any, page: Any, seen: Session) -> None:
    def route(handle: Any) -> None:
        if handle.request.url.startswith(LOCAL_SCHEMES):
            handle.continue_()
        else:
            handle.abort()

    context.route("**/*", route)
    context.on("request", lambda r: seen.requests.append(r.url))

    def dialog(d: Any) -> None:
        seen.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    page.on("pageerror", lambda e: seen.errors.append(str(e)))


def expect(locator: Any) -> Any:
    """Playwright's auto-waiting assertions (imported once it is known)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def _info(page: Any) -> str:
    return page.locator(".dt-info").inner_text()


def _first_cells(page: Any) -> list[str]:
    cells = page.locator("#cxa-domains tbody tr td:first-child")
    return cells.all_inner_texts()


def _settled_cells(page: Any, want: list[str], *, head: bool = True,
                   timeout_ms: int = 5000) -> list[str]:
    """The first cells once the table shows ``want`` (or the time is up).

    DataTables may redraw after the click or key press returns, so the
    cells are read again until they match: a table that never shows
    ``want`` still fails the assertion that follows.
    """
    cells = _first_cells(page)
    for _ in range(timeout_ms // 50):
        seen = cells[:len(want)] if head else cells[-len(want):]
        if seen == want:
            break
        page.wait_for_timeout(50)
        cells = _first_cells(page)
    return cells[:len(want)] if head else cells[-len(want):]


def _search(page: Any, text: str) -> None:
    box = page.locator(".dt-search input")
    box.fill(text)
    box.press("Enter")


def _choose(page: Any, label: str) -> None:
    """Pick a row by its label and wait until its details are shown (the
    page may first unpack the chunk that holds it)."""
    page.evaluate(
        "document.getElementById('cxa-detail-body').removeAttribute('data-row')")
    page.fill("#cxa-pick", label)
    page.dispatch_event("#cxa-pick", "change")
    page.wait_for_selector("#cxa-detail-body[data-row]", state="attached")


def _label(result: Any) -> str:
    name = result.domain or result.input
    region = result.region.code if result.region else "no region"
    return f"{name} \u00b7 {region} \u00b7 row {result.row}"


def test_table_holds_every_row(session):
    page = session.page

    assert f"of {ROWS:,} entries" in _info(page)
    page.locator(".dt-paging-button.last").click()
    assert _settled_cells(page, [str(ROWS)], head=False) == [str(ROWS)]
    page.locator(".dt-paging-button.first").click()
    session.assert_quiet()


def test_clicking_a_column_name_sorts(session):
    page = session.page
    header = page.locator("#cxa-domains thead th", has_text=re.compile("^row$"))

    header.click()
    assert _settled_cells(page, ["1", "2", "3"]) == ["1", "2", "3"]
    header.click()
    descending = [str(ROWS), str(ROWS - 1), str(ROWS - 2)]
    assert _settled_cells(page, descending) == descending
    header.click()
    session.assert_quiet()


def test_status_sorts_most_urgent_first(session):
    page = session.page
    header = page.locator("#cxa-domains thead th",
                          has_text=re.compile("^status$"))
    order = list(STATUSES)
    statuses = sorted({r.status for r in session.results}, key=order.index)

    header.click()
    first = page.locator("#cxa-domains tbody tr:first-child "
                         "td.cxa-status-cell")
    expect(first).to_have_text(statuses[0])
    header.click()
    expect(first).to_have_text(statuses[-1])
    page.locator("#cxa-domains thead th",
                 has_text=re.compile("^row$")).click()
    session.assert_quiet()


def test_typing_in_the_search_box_filters(session):
    page = session.page
    wanted = [r for r in session.results
              if r.domain and "softfail-00042" in r.domain]

    _search(page, "softfail-00042")
    expect(page.locator(".dt-info")).to_contain_text(
        f"filtered from {ROWS:,} total")
    assert f"of {len(wanted)} entr" in _info(page)
    rows = [str(r.row) for r in wanted]
    assert _settled_cells(page, rows) == rows
    assert len(_first_cells(page)) == len(rows)
    _search(page, "")
    expect(page.locator(".dt-info")).to_contain_text(f"of {ROWS:,} entries")
    session.assert_quiet()


def test_hostile_cells_show_as_text_in_the_table(session):
    page = session.page

    _search(page, "onerror")
    texts = " ".join(page.locator("#cxa-domains tbody").all_inner_texts())
    assert HOSTILE_CELL_IMG in texts
    assert HOSTILE_IMG in texts
    _search(page, "alert(2)")
    texts = " ".join(page.locator("#cxa-domains tbody").all_inner_texts())
    assert HOSTILE_CELL in texts
    assert page.locator("#cxa-domains img, #cxa-domains script").count() == 0
    _search(page, "")
    session.assert_quiet()


def test_details_of_a_large_run_are_unpacked_in_the_page(session):
    page = session.page

    data = page.locator("#cxa-chunk-0")
    assert data.get_attribute("data-encoding") == "gzip+base64"
    chunks = -(-ROWS // report.CHUNK_ROWS)
    assert chunks > 1
    assert page.locator('script[id^="cxa-chunk-"]').count() == chunks
    page.wait_for_selector("#cxa-details[data-loaded]")
    options = page.locator("#cxa-pick-list option")
    assert options.count() == ROWS
    session.assert_quiet()


def test_a_row_of_the_last_chunk_shows_its_details(session):
    page = session.page
    last = next(r for r in reversed(session.results)
                if r.extra.get("findings"))
    assert last.row > report.CHUNK_ROWS

    _choose(page, _label(last))

    body = page.locator("#cxa-detail-body")
    assert body.get_attribute("data-row") == str(last.row)
    assert page.locator("#cxa-detail-body .cxa-d-name").inner_text() == (
        last.domain or last.input)
    # Its findings read whole, their words coming from the catalogue.
    code = last.extra["findings"][0]["code"]
    assert CATALOGUE[code].explanation in body.inner_text()
    session.assert_quiet()


def test_choosing_a_domain_shows_its_details(session):
    page = session.page
    evil = next(r for r in session.results
                if r.domain == "evil.example.test")

    _choose(page, _label(evil))
    body = page.locator("#cxa-detail-body")
    assert body.get_attribute("data-row") == str(evil.row)
    assert page.locator("#cxa-detail-body .cxa-d-name").inner_text() == (
        "evil.example.test")
    record = page.locator("#cxa-detail-body pre.cxa-code").first.inner_text()
    assert record == f"v=spf1 {HOSTILE_SCRIPT} -all"
    ips = page.locator('#cxa-detail-body section[data-part="ips"] tbody tr')
    assert ips.count() == len(evil.ips)
    assert HOSTILE_CELL_IMG in body.inner_text()
    assert page.locator("#cxa-detail-body img, #cxa-detail-body script"
                        ).count() == 0
    session.assert_quiet()


def test_details_show_optional_checks(session):
    page = session.page
    partly = next(r for r in session.results
                  if r.domain == "partly.example.test")

    _choose(page, "partly.example.test")
    text = page.locator("#cxa-detail-body").inner_text()
    for expected in ("Findings", "spf-softfail-all", "Proposed record",
                     partly.extra["proposal"]["record"], "DMARC",
                     HOSTILE_IMG, "DNS evidence"):
        assert expected in text
    session.assert_quiet()


def test_details_show_the_allowlist_comparison(session):
    page = session.page
    (domain, cell), = ALLOWLIST_CELLS.items()
    result = next(r for r in session.results if r.domain == domain)
    section = result.extra["allowlist"]

    _choose(page, domain)
    part = page.locator('#cxa-detail-body section[data-part="allowlist"]')
    expect(part.locator("h3")).to_have_text("Allowlist")
    pills = part.locator(".cxa-pill")
    assert pills.all_inner_texts() == [c["status"] for c in section["ips"]]
    ips = part.locator("td .cxa-mono").all_inner_texts()
    assert ips == list(allowlist_ips(result.region))
    accepted = len(ips) - len(section["missing"])
    text = part.inner_text()
    assert f"{accepted} of {len(ips)} accepted" in text
    assert cell in text
    for entry in section["unparsed"] + section["other_region"]:
        assert entry["entry"] in text
    session.assert_quiet()


def test_clicking_a_row_shows_its_details(session):
    page = session.page

    _search(page, "nospf-00010")
    page.locator("#cxa-domains tbody tr").first.click()
    body = page.locator("#cxa-detail-body")
    row = next(r for r in session.results
               if r.domain == "nospf-00010.example.test").row
    assert body.get_attribute("data-row") == str(row)
    assert HOSTILE_SCRIPT in body.inner_text()  # its second TXT record
    _search(page, "")
    session.assert_quiet()


def test_screenshot(session):
    page = session.page

    _choose(page, "partly.example.test")
    page.evaluate("window.scrollTo(0, 0)")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
    session.assert_quiet()


@pytest.mark.parametrize(("status", "words"), [
    ("dns-error", "unknown: the DNS lookup failed"),
    ("input-error", "not looked up"),
])
def test_a_row_without_an_answer_never_reads_no_record(
    session, status: str, words: str
):
    page = session.page
    row = next(r for r in session.results if r.status == status)

    _choose(page, _label(row))

    spf = page.locator('#cxa-detail-body section[data-part="spf"]')
    assert words in spf.inner_text()
    assert "no SPF record" not in spf.inner_text()
    session.assert_quiet()


def test_part_of_a_name_finds_the_one_row_that_holds_it(session):
    page = session.page
    row = next(r for r in session.results
               if r.domain and "softfail-00042" in r.domain)

    _choose(page, "softfail-00042")

    body = page.locator("#cxa-detail-body")
    assert body.get_attribute("data-row") == str(row.row)
    # A part that several rows hold picks none of them.
    page.fill("#cxa-pick", "00042")
    page.dispatch_event("#cxa-pick", "change")
    expect(body).to_contain_text("No row matches")
    session.assert_quiet()
