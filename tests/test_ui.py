"""The interactive tool, in process: set widget values, press the buttons,
read what the widgets show.

DNS comes from a master file written here (through the zone-file backend)
or from the same file served by Knot on loopback, so each expectation is
derived from the region table rather than typed in.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from cxone_audit.outputs import result_to_dict
from cxone_audit.regions import allowlist_ips, load_regions, spf_ips
from cxone_audit.ui import AuditTool, split_entries

REGION = "EU1"
HOSTILE = "<img/src=x/onerror=alert(1)>"


@pytest.fixture(scope="module")
def zone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One domain per outcome: all IPs, one via an include, none, hostile."""
    ips = spf_ips(REGION)
    terms = " ".join(f"ip4:{ip}" for ip in ips)
    path = tmp_path_factory.mktemp("ui") / "ui.zone"
    path.write_text(
        "$ORIGIN .\n$TTL 300\n"
        ". 86400 IN SOA ns.test. hostmaster.test. 1 3600 900 604800 300\n"
        ". 86400 IN NS ns.test.\n"
        "ns.test. IN A 127.0.0.1\n"
        f'full.example. IN TXT "v=spf1 {terms} -all"\n'
        'part.example. IN TXT "v=spf1 include:_spf.vendor.example ~all"\n'
        f'_spf.vendor.example. IN TXT "v=spf1 ip4:{ips[0]} -all"\n'
        f'hostile.example. IN TXT "v=spf1 a:{HOSTILE}.x -all"\n'
        'nospf.example. IN TXT "just text"\n',
        encoding="utf-8",
    )
    return path


DOMAINS = "full.example, part.example\nnospf.example hostile.example"
EXPECTED = {
    "full.example": "authorised",
    "part.example": "partly-authorised",
    "nospf.example": "no-spf",
    "hostile.example": "not-authorised",
}


def run(tool: AuditTool) -> list:
    """Press Audit inside a running loop and wait for the task."""

    async def press() -> list:
        task = tool.start_audit()
        assert task is not None
        return await task

    return asyncio.run(press())


def statuses(tool: AuditTool) -> dict[str, str]:
    return {r.domain or r.input: r.status for r in tool.results}


def test_split_entries_takes_lines_commas_and_spaces():
    assert split_entries(" a.example,b.example\n\nc.example ; d.example ") \
        == ["a.example", "b.example", "c.example", "d.example"]
    assert split_entries(["a.example b.example"]) == ["a.example",
                                                      "b.example"]


def test_zone_file_audit_shows_table_and_details(zone: Path):
    tool = AuditTool(region=REGION, domains=DOMAINS, zone_file=zone)
    results = run(tool)

    assert statuses(tool) == EXPECTED
    assert [r.row for r in results] == [1, 2, 3, 4]
    for domain, status in EXPECTED.items():
        assert domain in tool.table.value
        assert f">{status}</span>" in tool.table.value
    assert "1 authorised" in tool.message.value
    assert not tool.audit_button.disabled
    assert tool.progress.value == tool.progress.max == 4
    assert tool.details_box.layout.display == "flex"

    tool.choice.value = 1  # part.example, as a user would pick it
    detail = tool.detail.value
    ips = spf_ips(REGION)
    assert "part.example" in detail
    assert "include:_spf.vendor.example" in detail
    assert f"ip4:{ips[0]}" in detail
    assert tool.proposal.value.startswith(
        "v=spf1 include:_spf.vendor.example")
    assert all(f"ip4:{ip}" in tool.proposal.value for ip in ips[1:])
    assert tool.zone_line.value.startswith("part.example.")
    assert tool.proposal_records.layout.display == "flex"
    assert "spf.cxone-ips-missing" in tool.more.value

    tool.choice.value = 0  # full.example: nothing to publish
    assert tool.proposal.value == ""
    assert tool.proposal_records.layout.display == "none"
    assert "nothing to change" in tool.proposal_note.value


def test_dns_text_is_escaped(zone: Path):
    tool = AuditTool(region=REGION, domains="hostile.example",
                     zone_file=zone)
    run(tool)
    shown = tool.detail.value + tool.table.value + tool.more.value
    assert HOSTILE not in shown
    assert "&lt;img/src=x/onerror=alert(1)&gt;" in tool.detail.value
    # A Textarea shows its value as text: the proposal keeps it verbatim.
    assert HOSTILE in tool.proposal.value


def test_knot_gives_the_same_verdicts_as_the_zone_file(zone: Path, knot_for):
    host, port = knot_for(zone)
    tool = AuditTool(region=REGION, domains=DOMAINS,
                     nameservers=f"{host}:{port}")
    run(tool)

    offline = AuditTool(region=REGION, domains=DOMAINS, zone_file=zone)
    run(offline)
    assert statuses(tool) == statuses(offline) == EXPECTED
    live = [[v.to_dict() for v in r.ips] for r in tool.results]
    assert live == [[v.to_dict() for v in r.ips] for r in offline.results]
    assert f"{host}" in tool.info.resolver


def _file(name: str, content: bytes) -> dict:
    return {"name": name, "type": "", "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.now(UTC)}


def test_uploaded_csv_rows_follow_the_typed_ones(zone: Path):
    csv = (b"domain,region,owner\nfull.example,,ops\n"
           b"part.example,Atlantis,sales\n")
    tool = AuditTool(region=REGION, domains="nospf.example",
                     zone_file=zone)
    tool.upload.value = (_file("list.csv", csv),)
    assert "list.csv: 2 rows" in tool.upload_note.value
    run(tool)

    rows = [(r.row, r.domain, r.status) for r in tool.results]
    assert rows == [(1, "nospf.example", "no-spf"),
                    (2, "full.example", "authorised"),
                    (3, "part.example", "input-error")]
    assert "Atlantis" in tool.results[2].reason
    assert tool.results[1].columns["owner"] == "ops"
    assert tool.info.input == "list.csv"


def test_uploaded_xlsx_is_read(zone: Path):
    buffer = io.BytesIO()
    pd.DataFrame({"Domain": ["part.example"]}).to_excel(buffer, index=False)
    tool = AuditTool(region=REGION, zone_file=zone)
    tool.upload.value = (_file("domains.xlsx", buffer.getvalue()),)
    run(tool)
    assert statuses(tool) == {"part.example": "partly-authorised"}


def test_unreadable_upload_is_a_message(zone: Path):
    tool = AuditTool(region=REGION, zone_file=zone)
    tool.upload.value = (_file("notes.pdf", b"%PDF-1.4"),)
    assert "use a .csv or .xlsx file" in tool.message.value
    assert "notes.pdf" in tool.message.value
    assert "upload" not in tool.message.value  # no temporary file name
    tool.upload.value = (_file("x.csv", b"name\nfull.example\n"),)
    run(tool)
    assert "domain" in tool.message.value
    assert tool.results == []


@pytest.mark.parametrize(("options", "expected"), [
    ({"region": None, "domains": "full.example"}, "choose a region"),
    ({"domains": ""}, "type at least one domain"),
    ({"domains": "full.example", "nameservers": "dns.example.net"},
     "bad nameserver"),
    ({"domains": "full.example", "nameservers": "127.0.0.1",
      "zone_file": "x.zone"}, "not both"),
    ({"domains": "full.example", "zone_file": "missing/none.zone"},
     "cannot open zone file"),
])
def test_bad_inputs_are_messages_not_tracebacks(options, expected):
    tool = AuditTool(**options)
    assert run(tool) == []
    assert expected in tool.message.value
    assert "cxa-error" in tool.message.value
    assert not tool.audit_button.disabled


def test_unknown_region_parameter_is_a_message():
    tool = AuditTool(region="Atlantis", domains="full.example")
    assert "unknown CXone region" in tool.message.value
    assert "Atlantis" in tool.message.value
    assert tool.region.value is None
    assert run(tool) == []
    assert "choose a region" in tool.message.value


def test_unusable_domains_are_input_errors(zone: Path):
    tool = AuditTool(region=REGION, domains="not_a_domain ftp://",
                     zone_file=zone)
    run(tool)
    assert [r.status for r in tool.results] == ["input-error"] * 2
    assert "no row could be audited" in tool.message.value


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A UDP socket on loopback that reads DNS queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sink.getsockname()[1]}"


def test_unreachable_dns_keeps_the_loop_free(silent_server: str):
    tool = AuditTool(region=REGION, domains="a.example b.example",
                     nameservers=silent_server, timeout=0.4, retries=0)

    async def press() -> tuple[int, bool, bool]:
        task = tool.start_audit()
        ticks = 0
        while not task.done():  # the loop keeps running other work
            await asyncio.sleep(0.02)
            ticks += 1
            busy = tool.audit_button.disabled and not tool.stop_button.disabled
            assert busy or task.done()
        await task
        return ticks, tool.audit_button.disabled, tool.stop_button.disabled

    ticks, audit_disabled, stop_disabled = asyncio.run(press())
    assert ticks >= 10
    assert (audit_disabled, stop_disabled) == (False, True)
    assert [r.status for r in tool.results] == ["dns-error"] * 2
    assert "DNS unreachable" in tool.message.value


def test_stop_cancels_a_running_audit(silent_server: str):
    tool = AuditTool(region=REGION, domains="a.example",
                     nameservers=silent_server, timeout=5, retries=0)

    async def press_then_stop() -> list:
        task = tool.start_audit()
        await asyncio.sleep(0.2)
        assert tool.audit_button.disabled
        tool.stop_button.click()
        return await task

    assert asyncio.run(press_then_stop()) == []
    assert "audit stopped" in tool.message.value
    assert not tool.audit_button.disabled


def test_pressing_audit_outside_a_loop_is_a_message():
    tool = AuditTool(region=REGION, domains="full.example")
    assert tool.start_audit() is None
    assert "await tool.run()" in tool.message.value


def test_save_writes_the_batch_outputs_of_the_same_run(zone: Path,
                                                       tmp_path: Path):
    tool = AuditTool(region=REGION, domains=DOMAINS, zone_file=zone)
    assert asyncio.run(tool.save(tmp_path / "early")) == {}
    assert "audit first" in tool.save_message.value

    run(tool)
    assert not tool.save_button.disabled
    out = tmp_path / "saved"
    tool.out_dir.value = str(out)

    async def press() -> dict:
        task = tool.start_save()
        assert task is not None
        return await task

    paths = asyncio.run(press())
    assert set(paths) == {"json", "csv", "xlsx", "html"}
    saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert saved["domains"] == json.loads(json.dumps(
        [result_to_dict(r) for r in tool.results]))
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["status"]) == list(EXPECTED.values())
    assert "part.example" in (out / "report.html").read_text(
        encoding="utf-8")
    assert "saved results.json" in tool.save_message.value


def test_region_tab_filters_by_region_and_purpose():
    tool = AuditTool()
    tool.regions_region.value = "JP1"
    tool.regions_purpose.value = "allowlist"
    wanted = set(load_regions("JP1", "allowlist")["ip"])
    for ip in wanted:
        assert f">{ip}<" in tool.regions_table.value
    others = set(load_regions()["ip"]) - wanted
    assert others
    assert not any(f">{ip}<" in tool.regions_table.value for ip in others)
    assert tool.regions_table.value.count("<tr>") == len(
        load_regions("JP1", "allowlist")) + 1

    tool.regions_region.value = ""
    tool.regions_purpose.value = ""
    assert tool.regions_table.value.count("<tr>") == len(load_regions()) + 1


def test_allowlist_tab_lists_what_to_add():
    tool = AuditTool(region="NA1")
    ips = allowlist_ips("NA1")
    tool.allow_text.value = f"{ips[0]}\n# a comment\nmail.example\n"
    tool.check_allowlist()

    result = tool.allow_result.value
    assert f"1 of {len(ips)}" in result
    assert "mail.example" in result  # the unreadable entry is reported
    assert tool.allow_additions.value.split() == list(ips[1:])
    tool.allow_style.value = "postfix"
    assert f"{ips[1]}/32" in tool.allow_additions.value

    tool.allow_text.value = "\n".join(ips)
    tool.check_allowlist()
    assert tool.allow_additions.value == ""
    assert tool.allow_additions_box.layout.display == "none"


def test_allowlist_without_region_is_a_message():
    tool = AuditTool(region=None)
    tool.check_allowlist()
    assert "choose a region" in tool.allow_result.value
