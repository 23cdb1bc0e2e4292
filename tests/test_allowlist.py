"""Allowlist exports against a region's CXone allowlist IPs."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cxone_audit.allowlist import (
    ADDITION_STYLES,
    CurrentAllowlist,
    allowlist_section,
    check_allowlist,
    format_additions,
    load_allowlist,
    parse_entry,
    read_allowlist,
)
from cxone_audit.audit import audit_domain
from cxone_audit.cli import main
from cxone_audit.errors import InputFileError, RegionError
from cxone_audit.regions import REGION_CODES, allowlist_ips, spf_ips

from .zones import zone

DATA = Path(__file__).resolve().parent / "data" / "allowlist"
TEXT = DATA / "gateway-allowlist.txt"
POSTFIX = DATA / "postfix-client-access.cidr"
EXCHANGE = DATA / "exchange-ipallowlist.csv"
SEMICOLON = DATA / "gateway-export-semicolon.csv"

EU1 = allowlist_ips("EU1")


def _status(result, ip: str) -> str:
    return next(c.status for c in result.ips if c.ip == ip)


# ---------------------------------------------------------------------------
# Reading one entry


@pytest.mark.parametrize(
    ("text", "networks"),
    [
        ("203.0.113.5", ["203.0.113.5/32"]),
        ("203.0.113.0/24", ["203.0.113.0/24"]),
        ("203.0.113.0/255.255.255.0", ["203.0.113.0/24"]),
        ("203.0.113.0/24 partner relay", ["203.0.113.0/24"]),
        ('"203.0.113.7"', ["203.0.113.7/32"]),
        ("203.0.113.7, office", ["203.0.113.7/32"]),
        ("203.0.113.1-203.0.113.4", ["203.0.113.1/32", "203.0.113.2/31",
                                     "203.0.113.4/32"]),
        ("203.0.113.8 - 203.0.113.15 lab", ["203.0.113.8/29"]),
        ("203.0.113", ["203.0.113.0/24"]),
        ("203.0.113.*", ["203.0.113.0/24"]),
        ("198.51.*.*", ["198.51.0.0/16"]),
        ("2001:db8::/32", ["2001:db8::/32"]),
        ("[2001:db8::]/32 OK", ["2001:db8::/32"]),
        ("192.0.2.25 - monitoring", ["192.0.2.25/32"]),
    ],
)
def test_parse_entry(text: str, networks: list[str]) -> None:
    entry = parse_entry(text)

    assert [str(n) for n in entry.networks] == networks
    assert entry.reason == ""


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("mail.partner.example", "host or domain name"),
        ("postmaster@example.test", "e-mail address"),
        ("010.1.2.3", "leading zeros"),
        ("203.0.113.300", "not a valid IPv4 address"),
        ("203.0.113.0/33", "not a valid IPv4 address"),
        ("203.0.113.9-203.0.113.1", "not a valid address range"),
        ("allow everything", "not an IP address"),
        ("", "empty"),
    ],
)
def test_unreadable_entries_keep_a_reason(text: str, reason: str) -> None:
    entry = parse_entry(text)

    assert entry.networks == ()
    assert reason in entry.reason


def test_host_bits_are_read_as_the_network_and_noted() -> None:
    entry = parse_entry("203.0.113.77/24")

    assert [str(n) for n in entry.networks] == ["203.0.113.0/24"]
    assert "host bits" in entry.note


@pytest.mark.parametrize(
    ("text", "allows"),
    [
        ("203.0.113.5 OK", True),
        ("203.0.113.5 PERMIT", True),
        ("203.0.113.5 trusted partner", True),
        ("203.0.113.5 REJECT spam source", False),
        ("203.0.113.5 554 5.7.1 go away", False),
        ("203.0.113.5 DISCARD", False),
    ],
)
def test_postfix_actions(text: str, allows: bool) -> None:
    assert parse_entry(text).allows is allows


# ---------------------------------------------------------------------------
# Reading exports


def test_text_export() -> None:
    entries = read_allowlist(TEXT)

    assert len(entries) == 10           # comments and blank lines dropped
    assert "198.51.100.0/24 partner relay pool" in entries
    assert "192.0.2.25 monitoring probe" in entries   # inline comment gone
    assert not any(e.startswith(("#", "//")) for e in entries)


def test_text_export_against_eu1() -> None:
    result = check_allowlist(read_allowlist(TEXT), "EU1")

    assert result.present == ["216.20.244.25", "3.73.46.42"]
    assert result.covered == ["216.20.248.25"]
    covered = next(c for c in result.ips if c.status == "covered")
    assert covered.network == "216.20.248.0/24"
    assert result.missing == ["69.169.228.209", "69.169.228.210",
                              "18.193.197.37"]
    assert not result.complete

    assert [(o.entry, o.regions) for o in result.other_region] == [
        ("54.240.86.63", ("NA1",)),
    ]
    assert result.ipv6 == ("2001:db8:1::/48 IPv6 relay",)
    unparsed = {u.entry: u.reason for u in result.unparsed}
    assert set(unparsed) == {
        "mail.partner.example by name - does not work here",
        "010.1.2.3", "203.0.113.300",
    }
    # Nothing is dropped: every entry is counted somewhere.
    assert result.entries == 10


def test_postfix_table_first_match_wins() -> None:
    result = check_allowlist(read_allowlist(POSTFIX), "EU1")

    # 69.169.228.210 is refused by a line above the /24 that would accept it.
    refused = next(c for c in result.ips if c.ip == "69.169.228.210")
    assert refused.status == "missing"
    assert refused.refused_by.startswith("69.169.228.210/32 REJECT")
    assert _status(result, "69.169.228.209") == "covered"
    assert _status(result, "3.73.46.42") == "covered"
    assert _status(result, "18.193.197.37") == "present"
    assert result.missing == ["216.20.244.25", "216.20.248.25",
                              "69.169.228.210"]
    assert [i.entry.split()[0] for i in result.ignored] == [
        "69.169.228.210/32", "203.0.113.66",
    ]
    assert result.ipv6 == ("[2001:db8::]/32 OK",)
    assert result.unparsed == ()


def test_exchange_csv_export() -> None:
    entries = read_allowlist(EXCHANGE)

    # The #TYPE line and the Identity column are not entries.
    assert entries == ["216.20.244.25", "216.20.248.25",
                       "69.169.228.209-69.169.228.210", "198.51.100.0/24",
                       "13.210.152.254", "203.0.113.5"]
    result = check_allowlist(entries, "EU1")
    assert result.missing == ["3.73.46.42", "18.193.197.37"]
    assert _status(result, "69.169.228.210") == "present"
    assert [(o.entry, o.regions) for o in result.other_region] == [
        ("13.210.152.254", ("AU1",)),
    ]


def test_semicolon_csv_picks_the_address_column() -> None:
    # "Sender Address" holds e-mail addresses; "IP Address" the IPs.
    entries = read_allowlist(SEMICOLON)

    assert entries == ["18.193.197.37", "3.73.46.42", "192.0.2.80",
                       "52.56.74.209", "relay.old.example"]
    result = check_allowlist(entries, "EU1")
    assert result.present == ["3.73.46.42", "18.193.197.37"]
    assert result.other_region[0].regions == ("UK1",)
    assert [u.entry for u in result.unparsed] == ["relay.old.example"]


def test_utf16_export_from_windows_powershell(tmp_path: Path) -> None:
    path = tmp_path / "allow.txt"
    path.write_text("# Out-File default encoding\r\n216.20.244.25\r\n"
                    "3.73.46.42\r\n", encoding="utf-16")

    assert read_allowlist(path) == ["216.20.244.25", "3.73.46.42"]


def test_text_file_with_a_header_is_read_as_csv(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_text("Network\tComment\n216.20.244.25\tCXone\n"
                    "198.51.100.0/24\tpartner\n", encoding="utf-8")

    assert read_allowlist(path) == ["216.20.244.25", "198.51.100.0/24"]


def test_csv_cell_with_several_addresses(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text('name,ips\nCXone,"216.20.244.25, 216.20.248.25"\n'
                    'note,"see ticket 42"\n', encoding="utf-8")

    assert read_allowlist(path) == ["216.20.244.25", "216.20.248.25",
                                    "see ticket 42"]


def test_csv_without_an_address_column(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("name,comment\nCXone,EU\n", encoding="utf-8")

    with pytest.raises(InputFileError, match="no column named ip"):
        read_allowlist(path)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="cannot read"):
        read_allowlist(tmp_path / "missing.txt")
    with pytest.raises(InputFileError, match="cannot read"):
        read_allowlist(tmp_path)


def test_a_workbook_is_not_read_as_text(tmp_path: Path) -> None:
    # A spreadsheet export passed by mistake: refused, not read as pages
    # of binary "entries" with every CXone IP reported missing.
    path = tmp_path / "allowlist.xlsx"
    pd.DataFrame({"ip": ["3.73.46.42"]}).to_excel(path, index=False)

    with pytest.raises(InputFileError, match="not text"):
        read_allowlist(path)


def test_csv_field_over_the_csv_limit_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text('ip,note\n3.73.46.42,"' + "x" * 200_000 + '"\n',
                    encoding="utf-8")

    with pytest.raises(InputFileError, match="field limit"):
        read_allowlist(path)


# ---------------------------------------------------------------------------
# Comparing


@pytest.mark.parametrize("code", REGION_CODES)
def test_no_entries_means_everything_missing(code: str) -> None:
    result = check_allowlist([], code)

    assert result.missing == list(allowlist_ips(code))
    assert format_additions(result.missing, "list").split() == list(
        allowlist_ips(code))


@pytest.mark.parametrize("code", REGION_CODES)
def test_the_region_table_itself_is_complete(code: str) -> None:
    result = check_allowlist(allowlist_ips(code), code)

    assert result.complete
    assert result.present == list(allowlist_ips(code))
    assert result.other_region == ()


def test_every_other_region_is_named() -> None:
    entries = [ip for code in REGION_CODES if code != "JP1"
               for ip in allowlist_ips(code)]

    result = check_allowlist(entries, "JP1")

    named = {code for o in result.other_region for code in o.regions}
    assert named == set(REGION_CODES) - {"JP1"}
    assert result.missing == list(allowlist_ips("JP1"))


def test_wide_ranges_are_warned_about() -> None:
    result = check_allowlist(["0.0.0.0/0", "216.20.0.0/16"], "EU1")

    assert result.complete
    # The narrowest covering entry is reported.
    assert next(c for c in result.ips if c.ip == "216.20.244.25").network \
        == "216.20.0.0/16"
    assert any("0.0.0.0/0" in w for w in result.warnings)
    assert not any("216.20.0.0/16" in w for w in result.warnings)


def test_exact_entry_wins_over_a_covering_one() -> None:
    result = check_allowlist(["216.20.244.0/24", "216.20.244.25"], "EU1")

    assert _status(result, "216.20.244.25") == "present"


def test_region_names_are_accepted_and_bad_ones_refused() -> None:
    assert check_allowlist([], "Europa").region.code == "EU1"
    with pytest.raises(RegionError):
        check_allowlist([], "EU9")


def test_result_is_json_ready() -> None:
    data = check_allowlist(read_allowlist(POSTFIX), "EU1").to_dict()

    assert json.loads(json.dumps(data)) == data
    assert data["missing"] == ["216.20.244.25", "216.20.248.25",
                               "69.169.228.210"]
    assert data["ips"][3]["refused_by"].startswith("69.169.228.210/32")


# ---------------------------------------------------------------------------
# For the audit of a domain


def test_load_allowlist_keeps_the_name_as_written() -> None:
    current = load_allowlist(TEXT, "lists/gateway.txt")

    assert current == CurrentAllowlist("lists/gateway.txt",
                                       tuple(read_allowlist(TEXT)))


def test_load_allowlist_holds_the_reason_instead_of_raising(
    tmp_path: Path,
) -> None:
    current = load_allowlist(tmp_path / "absent.txt", "absent.txt")

    assert current.file == "absent.txt"
    assert current.entries == ()
    assert "cannot read allowlist file" in current.error
    assert "absent.txt" in current.error


def test_section_is_the_comparison_and_its_file() -> None:
    current = load_allowlist(TEXT, "gateway.txt")

    section = allowlist_section(current, "EU1")

    expected = check_allowlist(read_allowlist(TEXT), "EU1").to_dict()
    assert section == {"file": "gateway.txt", **expected}
    assert json.loads(json.dumps(section)) == section


def test_section_of_an_unreadable_file() -> None:
    current = CurrentAllowlist("gone.txt", error="cannot read it")

    assert allowlist_section(current, "EU1") == {"file": "gone.txt",
                                                 "error": "cannot read it"}


_AUDITED = "v=spf1 " + " ".join(f"ip4:{ip}" for ip in spf_ips("EU1"))
_ZONE = f'good.example. IN TXT "{_AUDITED} -all"\n'


def test_audit_domain_compares_entries_given_as_a_list() -> None:
    result = asyncio.run(audit_domain("good.example", "EU1", zone(_ZONE),
                                      allowlist=list(EU1[:2])))

    section = result.extra["allowlist"]
    assert section["file"] is None
    assert section["missing"] == list(EU1[2:])
    assert result.status == "authorised"


def test_audit_domain_without_an_allowlist_has_no_section() -> None:
    result = asyncio.run(audit_domain("good.example", "EU1", zone(_ZONE)))

    assert "allowlist" not in result.extra


def test_audit_domain_refuses_a_file_name_for_entries() -> None:
    with pytest.raises(TypeError, match="read_allowlist"):
        asyncio.run(audit_domain("good.example", "EU1", zone(_ZONE),
                                 allowlist=str(TEXT)))


# ---------------------------------------------------------------------------
# Writing additions


def test_list_style() -> None:
    assert format_additions(["3.73.46.42", "18.193.197.37"], "list") == (
        "3.73.46.42\n18.193.197.37\n")
    assert format_additions([], "list") == ""


def test_postfix_style_reads_back_as_complete(tmp_path: Path) -> None:
    text = format_additions(list(EU1), "postfix", "EU1")
    path = tmp_path / "cxone_access.cidr"
    path.write_text(text, encoding="utf-8")

    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert all(re.fullmatch(r"[\d.]+/32\s+OK", line) for line in lines)
    assert "EU1" in text.splitlines()[0]
    assert check_allowlist(read_allowlist(path), "EU1").complete


def test_exchange_style() -> None:
    text = format_additions(["3.73.46.42", "18.193.197.37"], "exchange")

    assert text == (
        "Set-HostedConnectionFilterPolicy -Identity Default "
        '-IPAllowList @{Add="3.73.46.42","18.193.197.37"}\n'
    )


def test_additions_refuse_what_is_not_an_address() -> None:
    with pytest.raises(ValueError):
        format_additions(["3.73.46.42\"; Remove-Item x"], "exchange")
    with pytest.raises(ValueError, match="unknown style"):
        format_additions(["3.73.46.42"], "sendmail")


# ---------------------------------------------------------------------------
# The command


def _cli(*args: str):
    return CliRunner().invoke(main, ["allowlist", *args])


def test_cli_without_a_current_allowlist() -> None:
    result = _cli("--region", "EU1", "--format", "list")

    assert result.exit_code == 0, result.output
    assert "No current allowlist" in result.output
    assert "First remove" not in result.output
    tail = result.output.split("---\n")[-1].split()
    assert tail == list(EU1)


def test_cli_with_an_export() -> None:
    result = _cli("-r", "EU1", "--current", str(POSTFIX))

    assert result.exit_code == 0, result.output
    for word in ("present", "covered", "missing", "refused first by",
                 "Entries that refuse mail", "IPv6 entries",
                 "First remove these lines"):
        assert word in result.output
    missing = check_allowlist(read_allowlist(POSTFIX), "EU1").missing
    for style in ADDITION_STYLES:
        text = format_additions(missing, style, "EU1").rstrip()
        assert text in result.output


def test_cli_json() -> None:
    result = _cli("-r", "eu", "--current", str(TEXT), "--json",
                  "--format", "exchange")

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["region"] == "EU1"
    assert data["source"] == TEXT.name
    assert list(data["additions"]) == ["exchange"]
    assert data["missing"] == ["69.169.228.209", "69.169.228.210",
                               "18.193.197.37"]
    assert [u["entry"] for u in data["unparsed"]][1] == "010.1.2.3"
    for ip in data["missing"]:
        ipaddress.IPv4Address(ip)
        assert f'"{ip}"' in data["additions"]["exchange"]


def test_cli_nothing_to_add(tmp_path: Path) -> None:
    path = tmp_path / "complete.txt"
    path.write_text("\n".join(EU1) + "\n", encoding="utf-8")

    result = _cli("-r", "EU1", "--current", str(path))

    assert result.exit_code == 0
    assert "Nothing to add" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--region", "Atlantis"],
        ["--region", "EU1", "--current", "no-such-file.txt"],
        ["--region", "EU1", "--format", "sendmail"],
        [],
    ],
)
def test_cli_usage_errors_exit_2(args: list[str]) -> None:
    result = _cli(*args)

    assert result.exit_code == 2, result.output


def test_cli_directory_as_file_exits_2(tmp_path: Path) -> None:
    result = _cli("-r", "EU1", "--current", str(tmp_path))

    assert result.exit_code == 2
