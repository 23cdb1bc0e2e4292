"""Time the HTML report: papermill, nbconvert and the page, by row count.

``python -m benchmarks.report_timing --rows 50 10000 [--browser]``

The bundled sample (``data/sample_domains.csv`` over ``data/sample.zone``,
every status, real findings and proposals) is audited once offline; its
results are repeated under numbered names up to each row count and written
with ``write_outputs``. For each count the script times
:func:`cxone_audit.report.execute_notebook` (papermill, including the
kernel start) and :func:`cxone_audit.report.notebook_html` (nbconvert),
and reports the sizes of ``results.json`` and ``report.html``. With
``--browser`` it also opens the page in headless Chromium and times how long
the table takes to show its row count, the details picker to be ready, and
the last row's details to show once chosen.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from pathlib import Path

from cxone_audit import report
from cxone_audit.batch import audit_rows
from cxone_audit.inputs import read_rows
from cxone_audit.outputs import RunInfo, write_outputs
from cxone_audit.resolver import ZoneFileResolver

PROJECT = Path(__file__).resolve().parents[1]
SAMPLE = PROJECT / "data" / "sample_domains.csv"
ZONE = PROJECT / "data" / "sample.zone"


def sample_results() -> list:
    """Audit the bundled sample offline, once."""
    resolver = ZoneFileResolver(ZONE)
    rows = read_rows(SAMPLE)
    return asyncio.run(audit_rows(rows, resolver, progress=False))


def scaled(base: list, rows: int) -> list:
    """``rows`` results: ``base`` repeated under numbered domain names."""
    out = []
    for index in range(rows):
        result = base[index % len(base)]
        number = index // len(base)
        name = result.domain
        if name and number:
            first, _, rest = name.partition(".")
            name = f"{first}-{number:05d}.{rest}"
        out.append(dataclasses.replace(result, row=index + 1, domain=name))
    return out


def browser_seconds(page_path: Path) -> dict[str, float]:
    """Seconds from navigation until the page is usable, and per detail.

    ``table_s``: the table shows its row count; ``details_s``: the details
    picker is ready; ``last_row_s``: the last row's details are shown after
    it is chosen (its chunk unpacked on demand).
    """
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"]
    with sync_playwright() as playwright, \
            tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path="/usr/bin/chromium", headless=True,
            args=args)
        page = context.new_page()
        started = time.perf_counter()
        page.goto(page_path.as_uri(), timeout=600_000)
        page.wait_for_selector(".dt-info", timeout=600_000)
        table = time.perf_counter() - started
        page.wait_for_selector("#cxa-details[data-loaded]", state="attached",
                               timeout=600_000)
        details = time.perf_counter() - started

        last = page.locator("#cxa-pick-list option").count()
        chosen = time.perf_counter()
        page.fill("#cxa-pick", str(last))
        page.dispatch_event("#cxa-pick", "change")
        page.wait_for_selector(f'#cxa-detail-body[data-row="{last}"]',
                               state="attached", timeout=120_000)
        last_row = time.perf_counter() - chosen
        context.close()
    return {"table_s": table, "details_s": details, "last_row_s": last_row}


def measure(base: list, rows: int, browser: bool) -> dict[str, float]:
    """Render one report of ``rows`` rows and time its steps."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        info = RunInfo(resolver="zone file sample.zone", input="bench.csv")
        results_path = write_outputs(scaled(base, rows), info, out)["json"]

        started = time.perf_counter()
        notebook = report.execute_notebook(results_path)
        executed = time.perf_counter()
        page = report.notebook_html(notebook, "benchmark")
        converted = time.perf_counter()
        assert report.find_remote_references(page) == []
        checked = time.perf_counter()

        html_path = out / "report.html"
        html_path.write_text(page, encoding="utf-8")
        figures = {
            "rows": rows,
            "papermill_s": executed - started,
            "nbconvert_s": converted - executed,
            "check_s": checked - converted,
            "results_mb": results_path.stat().st_size / 1e6,
            "html_mb": html_path.stat().st_size / 1e6,
        }
        if browser:
            figures.update(browser_seconds(html_path))
    return figures


def main() -> None:
    """Parse the arguments, measure, print one line per row count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[50, 10_000])
    parser.add_argument("--browser", action="store_true")
    options = parser.parse_args()

    base = sample_results()
    print("rows  papermill  nbconvert  check  results.json  report.html"
          + ("  table shown  details ready  last row" if options.browser
             else ""))
    for rows in options.rows:
        f = measure(base, rows, options.browser)
        line = (f"{f['rows']:>6}  {f['papermill_s']:7.1f} s  "
                f"{f['nbconvert_s']:7.2f} s  {f['check_s']:4.2f} s  "
                f"{f['results_mb']:9.1f} MB  {f['html_mb']:8.1f} MB")
        if options.browser:
            line += (f"  {f['table_s']:9.1f} s  {f['details_s']:11.1f} s"
                     f"  {f['last_row_s']:6.2f} s")
        print(line, flush=True)


if __name__ == "__main__":
    main()
