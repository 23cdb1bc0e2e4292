"""The allowlist check inside a batch audit: run-wide and per-row files.

The expectations are derived from the region tables with plain
``ipaddress`` containment, not from the comparison code under test.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from cxone_audit.batch import AllowlistFiles
from cxone_audit.cli import main
from cxone_audit.outputs import SUMMARY_COLUMNS
from cxone_audit.regions import REGION_CODES, allowlist_ips, spf_ips

from .conftest import SAMPLE_ZONE

EU1 = allowlist_ips("EU1")
NA1 = allowlist_ips("NA1")


def _networks(entries: Iterable[str]) -> list[ipaddress.IPv4Network]:
    return [ipaddress.ip_network(e, strict=False) for e in entries]


def expected_missing(region: str, listed: Iterable[str]) -> list[str]:
    """The region's allowlist IPs that no listed network holds."""
    networks = _networks(listed)
    return [ip for ip in allowlist_ips(region)
            if not any(ipaddress.ip_address(ip) in n for n in networks)]


def expected_other_region(region: str, listed: Iterable[str]) -> list[str]:
    """The listed networks holding another region's allowlist IPs."""
    others = [ipaddress.ip_address(ip) for code in REGION_CODES
              if code != region for ip in allowlist_ips(code)]
    return [text for text, n in zip(listed, _networks(listed), strict=True)
            if any(ip in n for ip in others)]


# ---------------------------------------------------------------------------
# AllowlistFiles: which file applies to a row, each read once


def test_a_relative_cell_is_read_from_the_folder(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "eu.txt").write_text("\n".join(EU1) + "\n")
    files = AllowlistFiles(folder=tmp_path)

    current = files.for_row({"Allowlist": " lists/eu.txt "})

    assert current is not None
    assert current.file == "lists/eu.txt"
    assert current.entries == EU1
    assert current.error == ""


def test_an_absolute_cell_inside_the_folder_is_read(tmp_path: Path) -> None:
    path = tmp_path / "na.txt"
    path.write_text(NA1[0] + "\n")
    files = AllowlistFiles(folder=tmp_path)

    current = files.for_row({"allowlist_file": str(path)})

    assert current is not None and current.entries == (NA1[0],)


@pytest.mark.parametrize("cell", ["../secret.txt", "{outside}"])
def test_a_cell_outside_the_folder_is_not_read(
    tmp_path: Path, cell: str
) -> None:
    # A spreadsheet from elsewhere must not make the audit read, and show
    # lines of, any file the user can read.
    secret = tmp_path / "secret.txt"
    secret.write_text(NA1[0] + "\n")
    (tmp_path / "sheet").mkdir()
    files = AllowlistFiles(folder=tmp_path / "sheet")

    current = files.for_row({"allowlist": cell.format(outside=secret)})

    assert current is not None
    assert current.entries == ()
    assert "spreadsheet's folder" in current.error


def test_each_file_is_read_once(tmp_path: Path) -> None:
    path = tmp_path / "eu.txt"
    path.write_text("\n".join(EU1) + "\n")
    files = AllowlistFiles(folder=tmp_path)
    first = files.for_row({"allowlist": "eu.txt"})

    path.unlink()
    again = files.for_row({"Allowlist File": "./eu.txt"})

    assert first is not None and again is not None
    assert again.entries == first.entries == EU1
    assert again.file == "./eu.txt"  # as this row wrote it


@pytest.mark.parametrize("cell", ["", "   "])
def test_an_empty_cell_falls_back_to_the_run(cell: str) -> None:
    files = AllowlistFiles(default=list(NA1))

    current = files.for_row({"allowlist": cell, "owner": "x"})

    assert current is not None and current.entries == NA1
    assert AllowlistFiles().for_row({"allowlist": cell}) is None


def test_a_missing_file_gives_the_reason(tmp_path: Path) -> None:
    files = AllowlistFiles(default=list(NA1), folder=tmp_path)

    current = files.for_row({"allowlist": "gone.txt"})

    assert current is not None
    assert current.file == "gone.txt"
    assert current.entries == ()
    assert "cannot read allowlist file" in current.error
    assert str(tmp_path / "gone.txt") in current.error


def test_a_name_with_a_nul_byte_is_an_error_not_a_crash() -> None:
    current = AllowlistFiles().for_row({"allowlist": "bad\x00name.txt"})

    assert current is not None and "cannot read" in current.error


# ---------------------------------------------------------------------------
# The audit command

#: Sample domains (data/sample.zone) and their regions.
DOMAINS = {"rhein-moebel.example": "EU1",
           "northwind-travel.example": "NA1",
           "tamisa-seguros.example": "UK1"}


def _export_entries() -> list[str]:
    """What the run's export lists: part of EU1, all of NA1, not CXone."""
    eu_range = str(ipaddress.ip_network(f"{EU1[1]}/24", strict=False))
    return [EU1[0], eu_range, *NA1, "2001:db8:1::/48", "198.51.100.0/24"]


def write_export(path: Path) -> Path:
    """A gateway export of :func:`_export_entries`, as people write them."""
    entries = _export_entries()
    lines = ["# Inbound gateway allowlist", "// exported for the tests", "",
             f"{entries[0]}   # CXone EU, added by hand",
             f"{entries[1]}   CXone EU range", "",
             *entries[2:-2],
             f"{entries[-2]}   IPv6 relay", "",
             f"{entries[-1]}   partner relay pool"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_domains(path: Path, rows: list[tuple[str, ...]],
                  header: str = "domain,region") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join([header, *(",".join(row) for row in rows)])
    path.write_text(text + "\n", encoding="utf-8")
    return path


def audit_cli(source: Path, out: Path, *options: str | Path) -> Result:
    args = ["audit", source, "--zone-file", SAMPLE_ZONE, "--out", out,
            "--no-report", "--no-progress", *options]
    return CliRunner().invoke(main, [str(a) for a in args])


def read_outputs(out: Path) -> tuple[list[dict], pd.DataFrame, pd.DataFrame]:
    """results.json's domains, summary.csv and summary.xlsx."""
    document = json.loads((out / "results.json").read_text("utf-8"))
    summary = pd.read_csv(out / "summary.csv", dtype=str,
                          keep_default_na=False)
    sheet = pd.read_excel(out / "summary.xlsx", dtype=str).fillna("")
    return document["domains"], summary, sheet


def codes(domain: dict) -> set[str]:
    return {f["code"] for f in domain["findings"]}


def assert_row(
    domain: dict, csv_row: dict, xlsx_row: dict, listed: list[str]
) -> None:
    """One row's section, findings and summary cells, from the tables."""
    region = DOMAINS[domain["domain"]]
    section = domain["allowlist"]
    missing = expected_missing(region, listed)
    others = expected_other_region(region, listed)

    assert section["region"] == region
    assert section["entries"] == len(listed)
    assert section["missing"] == missing
    assert section["complete"] is (not missing)
    assert [o["entry"].split()[0] for o in section["other_region"]] == others
    assert [e.split()[0] for e in section["ipv6"]] == ["2001:db8:1::/48"]
    assert section["unparsed"] == []

    found = {f["code"]: f for f in domain["findings"]}
    assert ("allowlist.missing" in found) is bool(missing)
    assert ("allowlist.other-region" in found) is bool(others)
    assert "mx.allowlist" not in found
    if missing:
        assert found["allowlist.missing"]["data"]["missing"] == missing
        assert "allowlist.missing (medium)" in csv_row["findings"]

    assert csv_row["allowlist_missing"] == "; ".join(missing)
    assert xlsx_row["allowlist_missing"] == "; ".join(missing)


def test_run_wide_allowlist_is_checked_against_each_rows_region(
    tmp_path: Path,
) -> None:
    export = write_export(tmp_path / "gateway.txt")
    source = write_domains(tmp_path / "domains.csv",
                           [(d, r) for d, r in DOMAINS.items()])
    listed = _export_entries()

    result = audit_cli(source, tmp_path / "out", "--allowlist", export)

    assert result.exit_code == 0, result.output
    domains, summary, sheet = read_outputs(tmp_path / "out")
    assert [d["domain"] for d in domains] == list(DOMAINS)
    assert {d["allowlist"]["file"] for d in domains} == {str(export)}
    for row in zip(domains, summary.to_dict("records"),
                   sheet.to_dict("records"), strict=True):
        assert_row(*row, listed)
    assert list(summary.columns).index("allowlist_missing") == len(
        SUMMARY_COLUMNS)

    # The export holds all of NA1, part of EU1 and nothing of UK1.
    assert expected_missing("NA1", listed) == []
    assert expected_missing("UK1", listed) == list(allowlist_ips("UK1"))
    assert 0 < len(expected_missing("EU1", listed)) < len(EU1)


def test_allowlist_column_per_row(tmp_path: Path) -> None:
    run_wide = tmp_path / "run.txt"
    run_wide.write_text(f"# the run's own\n{NA1[0]}\n", encoding="utf-8")
    sheets = tmp_path / "sheets"
    (sheets / "lists").mkdir(parents=True)
    (sheets / "lists" / "eu.txt").write_text("\n".join(EU1) + "\n")
    source = write_domains(sheets / "domains.csv", [
        ("rhein-moebel.example", "EU1", "lists/eu.txt"),
        ("fjordline-cargo.example", "EU1", "lists/missing.txt"),
        ("northwind-travel.example", "NA1", ""),
    ], header="domain,region,Allowlist")

    result = audit_cli(source, tmp_path / "out", "--allowlist", run_wide)

    assert result.exit_code == 0, result.output
    domains, summary, _ = read_outputs(tmp_path / "out")
    own, unreadable, fallback = domains

    assert own["allowlist"]["file"] == "lists/eu.txt"
    assert own["allowlist"]["complete"] is True
    assert not {c for c in codes(own) if c.startswith(("allowlist.", "mx."))}

    assert set(unreadable["allowlist"]) == {"file", "error"}
    assert unreadable["allowlist"]["file"] == "lists/missing.txt"
    assert "No such file" in unreadable["allowlist"]["error"]
    assert "allowlist.unreadable" in codes(unreadable)
    # The row is kept and its SPF audit done as without any allowlist.
    assert unreadable["status"] == "authorised"
    assert [v["ip"] for v in unreadable["ips"]] == list(spf_ips("EU1"))
    assert unreadable["columns"]["Allowlist"] == "lists/missing.txt"

    assert fallback["allowlist"]["file"] == str(run_wide)
    assert fallback["allowlist"]["missing"] == expected_missing(
        "NA1", [NA1[0]])
    assert list(summary["allowlist_missing"]) == [
        "", "", "; ".join(expected_missing("NA1", [NA1[0]]))]


def test_unreadable_run_allowlist_is_bad_usage(tmp_path: Path) -> None:
    source = write_domains(tmp_path / "domains.csv",
                           [("rhein-moebel.example", "EU1")])
    out = tmp_path / "out"

    result = audit_cli(source, out, "--allowlist", tmp_path / "absent.txt")

    assert result.exit_code == 2, result.output
    assert "cannot read allowlist file" in result.output
    assert "absent.txt" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception,
                                                  SystemExit)
    assert not out.exists()  # refused before anything was written


def test_without_an_allowlist_nothing_changes(tmp_path: Path) -> None:
    source = write_domains(tmp_path / "domains.csv",
                           [(d, r) for d, r in DOMAINS.items()])

    result = audit_cli(source, tmp_path / "out")

    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert "allowlist" not in document["run"]
    assert not [d for d in document["domains"] if "allowlist" in d]
    assert all("mx.allowlist" in codes(d) for d in document["domains"])
    _, summary, sheet = read_outputs(tmp_path / "out")
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert list(sheet.columns) == list(SUMMARY_COLUMNS)


def test_resume_refuses_another_allowlist(tmp_path: Path) -> None:
    source = write_domains(tmp_path / "domains.csv",
                           [("rhein-moebel.example", "EU1")])
    first = write_export(tmp_path / "first.txt")
    other = tmp_path / "other.txt"
    other.write_text(EU1[0] + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert audit_cli(source, out, "--allowlist", first).exit_code == 0

    again = audit_cli(source, out, "--allowlist", first, "--resume")
    refused = audit_cli(source, out, "--allowlist", other, "--resume")

    assert again.exit_code == 0, again.output
    assert refused.exit_code == 2
    assert "another input or options" in refused.output


def test_a_formula_in_the_allowlist_cell_stays_data(tmp_path: Path) -> None:
    cell = '=HYPERLINK("https://evil.example")'
    source = tmp_path / "domains.csv"
    pd.DataFrame({"domain": ["rhein-moebel.example"], "region": ["EU1"],
                  "allowlist": [cell]}).to_csv(source, index=False)

    result = audit_cli(source, tmp_path / "out")

    assert result.exit_code == 0, result.output
    domains, summary, sheet = read_outputs(tmp_path / "out")
    assert domains[0]["allowlist"]["file"] == cell
    assert "allowlist.unreadable" in codes(domains[0])
    assert summary["allowlist"][0] == sheet["allowlist"][0] == "'" + cell
    assert summary["allowlist_missing"][0] == ""
