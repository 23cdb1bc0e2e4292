"""The interactive tool in a real browser: Voilà serving the notebook,
headless Chromium driven by Playwright, DNS from Knot on loopback.

Skipped when Chromium, Playwright or Voilà is missing, unless
``CXONE_REQUIRE_BROWSER=1`` (then missing tools fail the run). Every
request the page makes to anything but the local Voilà server is aborted.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cxone_audit.regions import allowlist_ips, load_regions, spf_ips

from .conftest import PROJECT

pytestmark = pytest.mark.browser

NOTEBOOK = PROJECT / "notebooks" / "explore.ipynb"
ARTIFACTS = PROJECT / "test-artifacts"
REQUIRE_ENV = "CXONE_REQUIRE_BROWSER"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu",
    "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
REGION = "UK1"


def _chromium() -> str | None:
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )


def _missing_tools() -> list[str]:
    missing = []
    if _chromium() is None:
        missing.append("chromium")
    for module in ("playwright", "voila"):
        if importlib.util.find_spec(module) is None:
            missing.append(module)
    return missing


@pytest.fixture(scope="module", autouse=True)
def _browser_tools() -> None:
    missing = _missing_tools()
    if not missing:
        return
    reason = f"browser test needs {', '.join(missing)}"
    if os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0"):
        pytest.fail(f"{reason}; {REQUIRE_ENV} is set", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"voila exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "api", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer: the server is up
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"voila did not answer:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def voila_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Voilà serving notebooks/explore.ipynb on a free loopback port."""
    home = tmp_path_factory.mktemp("voila")
    port = _free_port()
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_CONFIG_DIR=str(home / "config"),
               PYTHONPATH=os.pathsep.join(
                   [str(PROJECT), os.environ.get("PYTHONPATH", "")]))
    log = home / "voila.log"
    command = [sys.executable, "-m", "voila", str(NOTEBOOK), "--no-browser",
               f"--port={port}", "--Voila.ip=127.0.0.1"]
    with log.open("wb") as sink:
        server = subprocess.Popen(command, stdout=sink,
                                  stderr=subprocess.STDOUT, env=env,
                                  cwd=home)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for(url, server, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def page(voila_url: str, tmp_path_factory: pytest.TempPathFactory):
    """A Chromium page showing the Voilà app, cut off from all but it."""
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=_chromium(), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900},
        )
        context.route("**/*", lambda route: (
            route.continue_() if route.request.url.startswith(voila_url)
            or route.request.url.startswith(("data:", "blob:"))
            else route.abort()
        ))
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(voila_url)
        page.wait_for_selector(".cxa-region select")
        yield page
        context.close()


def _zone(tmp_path: Path) -> Path:
    """A root zone with one domain per outcome the test looks for."""
    ips = spf_ips(REGION)
    terms = " ".join(f"ip4:{ip}" for ip in ips)
    zone = tmp_path / "ui.zone"
    zone.write_text(
        "$ORIGIN .\n$TTL 300\n"
        ". 86400 IN SOA ns.test. hostmaster.test. 1 3600 900 604800 300\n"
        ". 86400 IN NS ns.test.\n"
        "ns.test. IN A 127.0.0.1\n"
        f'full.example. IN TXT "v=spf1 {terms} -all"\n'
        'part.example. IN TXT "v=spf1 include:_spf.vendor.example ~all"\n'
        f'_spf.vendor.example. IN TXT "v=spf1 ip4:{ips[0]} -all"\n'
        'hostile.example. IN TXT "v=spf1 a:<img/src=x/onerror=alert(1)>.x'
        ' -all"\n',
        encoding="utf-8",
    )
    return zone


def test_audit_through_knot_shows_verdicts(page, knot_for, tmp_path):
    host, port = knot_for(_zone(tmp_path))
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    label = next(label for value, label in _region_labels()
                 if value == REGION)
    page.select_option(".cxa-region select", label=label)
    page.fill(".cxa-domains textarea",
              "full.example\npart.example\nhostile.example")
    page.fill(".cxa-nameservers input", f"{host}:{port}")
    page.click(".cxa-audit")

    table = page.locator(".cxa-results table")
    table.wait_for()
    rows = {row.locator("td").nth(1).inner_text().strip():
            row.locator("td").nth(3).inner_text().strip()
            for row in table.locator("tbody tr").all()}
    assert rows == {"full.example": "authorised",
                    "part.example": "partly-authorised",
                    "hostile.example": "not-authorised"}
    assert page.locator(".cxa-audit").is_enabled()

    page.select_option(".cxa-choice select", index=1)
    detail = page.locator(".cxa-detail")
    detail.get_by_text("include:_spf.vendor.example").first.wait_for()
    verdicts = detail.locator("table tbody tr")
    assert verdicts.count() == len(spf_ips(REGION))
    first = verdicts.first.inner_text()
    assert spf_ips(REGION)[0] in first and "pass" in first
    proposal = page.locator(".cxa-proposal textarea").input_value()
    assert proposal.startswith("v=spf1 include:_spf.vendor.example")
    assert all(f"ip4:{ip}" in proposal for ip in spf_ips(REGION)[1:])

    _screenshot(page, ARTIFACTS / "ui.png")

    page.select_option(".cxa-choice select", index=2)
    page.locator(".cxa-detail").get_by_text("hostile.example").first.wait_for()
    assert "<img/src=x/onerror=alert(1)>" in page.locator(
        ".cxa-detail .cxa-pre").first.inner_text()
    assert page.locator(".cxa-detail img, .cxa-results img").count() == 0
    assert dialogs == []

    out = tmp_path / "saved"
    page.fill(".cxa-out-dir input", str(out))
    page.click(".cxa-save")
    page.locator(".cxa-saved .cxa-ok").wait_for(timeout=120_000)
    assert "report.html" in page.locator(".cxa-saved").inner_text()
    saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert {d["domain"]: d["status"] for d in saved["domains"]} == rows
    assert "part.example" in (out / "report.html").read_text(
        encoding="utf-8")


def _screenshot(page, path: Path) -> None:
    """The whole tool: Voilà scrolls inside the page, so grow the view."""
    path.parent.mkdir(exist_ok=True)
    height = page.evaluate(
        "() => document.querySelector('.cxa-tool').scrollHeight")
    page.set_viewport_size({"width": 1280, "height": int(height) + 80})
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def _tab(page, title: str):
    return page.locator(".lm-TabBar-tabLabel", has_text=title)


def _region_labels() -> list[tuple[str, str]]:
    frame = load_regions().drop_duplicates("region")
    return [(r.region, f"{r.region} · {r.region_name}")
            for r in frame.itertuples()]


def test_region_tables_filter(page):
    _tab(page, "Region tables").click()
    page.select_option(".cxa-regions-region select", label="EU1 · Europe")
    page.locator(".cxa-regions-purpose button",
                 has_text="SPF (send)").click()
    expected = list(load_regions("EU1", "spf")["ip"])
    table = page.locator(".cxa-regions-table tbody tr")
    page.wait_for_function(
        "n => document.querySelectorAll("
        "'.cxa-regions-table tbody tr').length === n", arg=len(expected))
    shown = [table.nth(i).locator("td").nth(4).inner_text().strip()
             for i in range(table.count())]
    assert shown == expected


def test_allowlist_check_lists_missing(page):
    _tab(page, "Allowlist check").click()
    ips = allowlist_ips(REGION)
    label = next(label for value, label in _region_labels()
                 if value == REGION)
    page.select_option(".cxa-allow-region select", label=label)
    page.fill(".cxa-allow-text textarea", ips[0])
    page.click(".cxa-allow-check")
    additions = page.locator(".cxa-allow-additions textarea")
    additions.wait_for()
    page.wait_for_function(
        "() => document.querySelector('.cxa-allow-additions textarea')"
        ".value.length > 0")
    assert additions.input_value().split() == list(ips[1:])
    result = page.locator(".cxa-allow-result").inner_text()
    assert f"1 of {len(ips)}" in result


def test_page_stays_usable_while_dns_is_silent(page):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        _tab(page, "Audit").click()
        page.fill(".cxa-domains textarea", "slow.example")
        page.fill(".cxa-zone-file input", "")
        page.fill(".cxa-nameservers input",
                  f"127.0.0.1:{silent.getsockname()[1]}")
        page.click(".cxa-audit")
        page.wait_for_function(
            "() => document.querySelector('.cxa-audit').disabled")

        # While the audit waits for DNS, another tab still answers.
        _tab(page, "Region tables").click()
        page.select_option(".cxa-regions-region select",
                           label="JP1 · Japan")
        page.wait_for_function(
            "() => document.querySelector('.cxa-regions-table')"
            ".innerText.includes('Japan')")
        assert page.locator(".cxa-audit").is_disabled()

        _tab(page, "Audit").click()
        page.locator(".cxa-message").get_by_text(
            "DNS unreachable").wait_for(timeout=90_000)
        assert page.locator(".cxa-audit").is_enabled()
