"""The command line, end to end.

Most tests drive the click commands in-process with ``CliRunner``; one runs
the installed ``cxone-audit`` entry point as a real subprocess against Knot.
Audits use ``--no-report``: the HTML report has its own tests.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from cxone_audit.cli import main
from cxone_audit.regions import REGION_CODES, allowlist_ips, spf_ips

from .conftest import (
    REALWORLD_DOMAINS,
    REALWORLD_EXPECTED,
    REALWORLD_ZONE,
    SAMPLE_ZONE,
)

EXIT_USAGE = 2

#: Rows of the real-world list the audit commands read: enough to cover
#: several regions and statuses, few enough to keep the CLI tests quick
#: (every row of the snapshot is checked in test_realworld.py).
SUBSET = 30


@pytest.fixture(scope="module")
def domains(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first SUBSET rows of the real-world domain list, as a CSV file."""
    lines = REALWORLD_DOMAINS.read_text(encoding="utf-8").splitlines()
    path = tmp_path_factory.mktemp("input") / "domains.csv"
    path.write_text("\n".join(lines[: SUBSET + 1]) + "\n", encoding="utf-8")
    return path


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _input_rows(path: Path) -> int:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def _expected_for(domain: str) -> dict[str, str]:
    with REALWORLD_EXPECTED.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return {r["ip"]: r["pyspf"] for r in rows if r["domain"] == domain}


def assert_outputs(out: Path, rows: int) -> dict:
    """The three output files exist and hold one row per input row."""
    document = json.loads((out / "results.json").read_text("utf-8"))
    summary = pd.read_csv(out / "summary.csv", dtype=str,
                          keep_default_na=False)
    sheet = pd.read_excel(out / "summary.xlsx", dtype=str)

    assert len(document["domains"]) == rows
    assert len(summary) == rows
    assert len(sheet) == rows
    assert document["run"]["rows"] == rows
    assert [d["row"] for d in document["domains"]] == list(range(1, rows + 1))
    assert list(summary["status"]) == [d["status"] for d in document["domains"]]
    return document


# --- audit ----------------------------------------------------------------


def test_audit_with_zone_file(tmp_path: Path, domains: Path) -> None:
    out = tmp_path / "zone"

    result = run("audit", domains, "--zone-file", REALWORLD_ZONE,
                 "--out", out, "--no-report", "--no-progress")

    assert result.exit_code == 0, result.output
    rows = _input_rows(domains)
    assert rows == SUBSET
    document = assert_outputs(out, rows)
    assert f"{rows} rows audited" in result.stdout
    assert "zone file realworld.zone" in document["run"]["resolver"]
    assert sum(document["run"]["counts"].values()) == rows


@pytest.mark.knot
def test_audit_through_knot_matches_zone_file(
    tmp_path: Path, realworld_knot, domains: Path
) -> None:
    host, port = realworld_knot
    common = (domains, "--no-report", "--no-progress")

    live = run("audit", *common, "--nameserver", f"{host}:{port}",
               "--out", tmp_path / "live")
    offline = run("audit", *common, "--zone-file", REALWORLD_ZONE,
                  "--out", tmp_path / "offline")

    assert live.exit_code == offline.exit_code == 0, live.output
    rows = _input_rows(domains)
    served = assert_outputs(tmp_path / "live", rows)
    read = assert_outputs(tmp_path / "offline", rows)
    assert f"{host}:{port}" in served["run"]["resolver"]
    assert served["run"]["dns"]["queries_sent"] > 0
    assert ([(d["status"], d["ips"]) for d in served["domains"]]
            == [(d["status"], d["ips"]) for d in read["domains"]])


def test_rows_that_cannot_be_audited_are_kept(tmp_path: Path) -> None:
    source = tmp_path / "mixed.csv"
    source.write_text(
        "Domain,Region,owner\n"
        "org002.example,AU1,alice\n"
        ",AU1,bob\n"
        "org002.example,XX9,carol\n"
        "ORG002.example.,au1,dave\n"
        "not a domain,EU1,erin\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"

    result = run("audit", source, "--zone-file", REALWORLD_ZONE,
                 "--out", out, "--no-report")

    assert result.exit_code == 0, result.output
    document = assert_outputs(out, 5)
    statuses = [d["status"] for d in document["domains"]]
    assert statuses[0] == "not-authorised"
    assert statuses[1:] == ["input-error"] * 4
    owners = [d["columns"]["owner"] for d in document["domains"]]
    assert owners == ["alice", "bob", "carol", "dave", "erin"]


def test_default_region_fills_rows_without_one(tmp_path: Path) -> None:
    source = tmp_path / "plain.csv"
    source.write_text("domain\norg002.example\n", encoding="utf-8")
    out = tmp_path / "out"

    result = run("audit", source, "--region", "Australia", "--zone-file",
                 REALWORLD_ZONE, "--out", out, "--no-report")

    assert result.exit_code == 0, result.output
    domain = assert_outputs(out, 1)["domains"][0]
    assert domain["region"] == "AU1"
    assert [v["ip"] for v in domain["ips"]] == list(spf_ips("AU1"))


@pytest.mark.knot
def test_installed_entry_point_audits_through_knot(
    tmp_path: Path, realworld_knot, domains: Path
) -> None:
    # The console script pip installed next to this interpreter.
    script = Path(sys.executable).with_name("cxone-audit")
    assert script.exists(), f"{script} missing: pip install -e . first"
    out = tmp_path / "out"
    port = realworld_knot[1]

    done = subprocess.run(
        [str(script), "audit", str(domains), "--nameserver",
         f"[::1]:{port}", "--out", str(out), "--no-report"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )

    assert done.returncode == 0, done.stderr
    rows = _input_rows(domains)
    document = assert_outputs(out, rows)
    assert f"{rows} rows audited" in done.stdout
    assert str(out / "results.json") in done.stdout
    assert f"[::1]:{port}" in document["run"]["resolver"]
    assert document["run"]["counts"]["dns-error"] == 0


def test_installed_entry_point_exit_code_for_a_missing_file(
    tmp_path: Path,
) -> None:
    script = Path(sys.executable).with_name("cxone-audit")

    done = subprocess.run(
        [str(script), "audit", str(tmp_path / "absent.csv"), "--zone-file",
         str(REALWORLD_ZONE), "--no-report"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )

    assert done.returncode == EXIT_USAGE
    assert "absent.csv" in done.stderr
    assert "Traceback" not in done.stderr


# --- check ----------------------------------------------------------------


def test_check_json_with_zone_file() -> None:
    result = run("check", "org002.example", "--region", "AU1",
                 "--zone-file", REALWORLD_ZONE, "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["domain"], data["region"]) == ("org002.example", "AU1")
    wanted = _expected_for("org002.example")
    assert {v["ip"]: v["result"] for v in data["ips"]} == wanted
    assert data["status"] == "not-authorised"


@pytest.mark.knot
def test_check_json_through_knot(realworld_knot) -> None:
    host, port = realworld_knot

    result = run("check", "ORG001.example.", "--region", "NA1",
                 "--nameserver", f"{host}:{port}", "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["domain"] == "org001.example"
    assert data["notes"], "normalisation should be noted"
    wanted = _expected_for("org001.example")
    assert {v["ip"]: v["result"] for v in data["ips"]} == wanted


def test_check_text_names_the_status() -> None:
    result = run("check", "org002.example", "-r", "AU1", "-z",
                 REALWORLD_ZONE)

    assert result.exit_code == 0, result.output
    assert "org002.example (AU1" in result.stdout
    assert "not-authorised" in result.stdout
    for ip in spf_ips("AU1"):
        assert ip in result.stdout


@pytest.mark.parametrize(
    ("domain", "region", "wanted", "unwanted"),
    [
        # A failed lookup says nothing about the record (never "none").
        ("tidewater-legal.example", "EU1",
         ["SPF record: (unknown: the lookup failed)", "fix first:"],
         ["SPF record: (none)", "publish"]),
        # SES-verified: the proposal is there, marked optional.
        ("coral-reef-tours.example", "EU1",
         ["publish (optional: SES-verified): v=spf1"], []),
        # No such domain: check the spelling, nothing to publish.
        ("no-such-name.example", "EU1",
         ["does not exist (NXDOMAIN)", "fix first:"], ["publish"]),
    ],
)
def test_check_text_says_what_to_do(
    domain: str, region: str, wanted: list[str], unwanted: list[str]
) -> None:
    result = run("check", domain, "-r", region, "-z", SAMPLE_ZONE)

    assert result.exit_code == 0, result.output
    for text in wanted:
        assert text in result.stdout
    for text in unwanted:
        assert text not in result.stdout


# --- regions --------------------------------------------------------------


def _shipped_table() -> list[dict[str, str]]:
    source = resources.files("cxone_audit").joinpath("data/regions.csv")
    with source.open("r", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_regions_csv_is_the_shipped_table() -> None:
    result = run("regions", "--format", "csv")

    assert result.exit_code == 0, result.output
    printed = list(csv.DictReader(io.StringIO(result.stdout)))
    shipped = _shipped_table()
    assert len(printed) == len(shipped)
    assert ({(r["region"], r["purpose"], r["ip"]) for r in printed}
            == {(r["region"], r["purpose"], r["ip"]) for r in shipped})


def test_regions_json_filters_by_region_and_purpose() -> None:
    result = run("regions", "--region", "eu1", "--purpose", "spf",
                 "--format", "json")

    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert {r["region"] for r in printed} == {"EU1"}
    assert {r["purpose"] for r in printed} == {"spf"}
    assert [r["ip"] for r in printed] == list(spf_ips("EU1"))


def test_regions_table_lists_every_region() -> None:
    result = run("regions")

    assert result.exit_code == 0, result.output
    for code in REGION_CODES:
        assert code in result.stdout
    assert "source:" in result.stdout
    for row in _shipped_table():
        assert row["ip"] in result.stdout


# --- usage errors: exit code 2 -----------------------------------------------


def _usage_error(result: Result, *words: str) -> None:
    assert result.exit_code == EXIT_USAGE, result.output
    assert result.exception is None or isinstance(result.exception,
                                                  SystemExit)
    for word in words:
        assert word in result.output


def test_missing_input_file(tmp_path: Path) -> None:
    _usage_error(run("audit", tmp_path / "absent.csv", "--zone-file",
                     REALWORLD_ZONE, "--out", tmp_path / "out"),
                 "absent.csv")


def test_input_without_domain_column(tmp_path: Path) -> None:
    source = tmp_path / "hosts.csv"
    source.write_text("host,region\norg002.example,AU1\n", encoding="utf-8")

    _usage_error(run("audit", source, "--zone-file", REALWORLD_ZONE,
                     "--out", tmp_path / "out"), "domain")


def test_unknown_region_for_audit(tmp_path: Path) -> None:
    _usage_error(run("audit", REALWORLD_DOMAINS, "--region", "XX9",
                     "--zone-file", REALWORLD_ZONE, "--out",
                     tmp_path / "out"), "XX9")


def test_unknown_region_for_check_and_regions() -> None:
    _usage_error(run("check", "org002.example", "--region", "XX9",
                     "--zone-file", REALWORLD_ZONE), "XX9")
    _usage_error(run("regions", "--region", "XX9"), "XX9")


def test_zone_file_and_nameserver_together(tmp_path: Path) -> None:
    _usage_error(run("audit", REALWORLD_DOMAINS, "--zone-file",
                     REALWORLD_ZONE, "--nameserver", "127.0.0.1:53",
                     "--out", tmp_path / "out", "--no-report"),
                 "--zone-file", "--nameserver")
    _usage_error(run("check", "org002.example", "-r", "AU1", "-z",
                     REALWORLD_ZONE, "-n", "127.0.0.1:53"))


def test_bad_nameserver_text(tmp_path: Path) -> None:
    _usage_error(run("check", "org002.example", "-r", "AU1", "-n",
                     "ns.example.com"), "ns.example.com")


def test_missing_zone_file(tmp_path: Path) -> None:
    _usage_error(run("check", "org002.example", "-r", "AU1", "-z",
                     tmp_path / "absent.zone"), "absent.zone")


def test_out_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    taken = tmp_path / "taken.xlsx"
    taken.write_text("a file, not a folder", encoding="utf-8")

    _usage_error(run("audit", REALWORLD_DOMAINS, "--zone-file",
                     REALWORLD_ZONE, "--out", taken, "--no-report"),
                 "--out", "taken.xlsx")


def test_no_report_removes_an_earlier_runs_report(
    tmp_path: Path, domains: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("<p>an earlier run</p>", "utf-8")

    result = run("audit", domains, "--zone-file", REALWORLD_ZONE,
                 "--out", out, "--no-report", "--no-progress")

    assert result.exit_code == 0, result.output
    assert (out / "results.json").exists()
    assert not (out / "report.html").exists()
    assert "no report.html (--no-report)" in result.stdout


def test_header_only_input_says_it_has_no_rows(tmp_path: Path) -> None:
    source = tmp_path / "empty.csv"
    source.write_text("domain,region\n", encoding="utf-8")

    result = run("audit", source, "--zone-file", REALWORLD_ZONE,
                 "--out", tmp_path / "out", "--no-report", "--no-progress")

    assert result.exit_code == 0, result.output
    assert "0 rows audited" in result.stdout
    assert "the input has no rows" in result.stdout


def test_bad_dns_option_keeps_an_earlier_runs_results(
    tmp_path: Path, domains: Path
) -> None:
    out = tmp_path / "out"
    first = run("audit", domains, "--zone-file", REALWORLD_ZONE,
                "--out", out, "--no-progress")
    assert first.exit_code == 0, first.output
    saved = {p.name: p.read_bytes() for p in out.iterdir()}

    again = run("audit", domains, "--nameserver", "not-an-ip",
                "--out", out, "--no-progress")

    _usage_error(again, "not-an-ip")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == saved


def test_resume_finishes_a_cut_short_run_with_the_same_results(
    tmp_path: Path, domains: Path
) -> None:
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    common = ("--zone-file", REALWORLD_ZONE, "--no-report", "--no-progress")
    assert run("audit", domains, "--out", whole, *common).exit_code == 0
    assert run("audit", domains, "--out", cut, *common).exit_code == 0
    # As if the run had been killed after ten rows, mid-way through a line.
    lines = (cut / "results.jsonl").read_text("utf-8").splitlines()
    (cut / "results.jsonl").write_text(
        "\n".join(lines[:11]) + "\n" + lines[11][:40], encoding="utf-8")

    resumed = run("audit", domains, "--out", cut, "--resume", *common)

    assert resumed.exit_code == 0, resumed.output
    assert f"{SUBSET} rows audited" in resumed.stdout
    assert "(10 kept from the earlier run)" in resumed.stdout
    wanted = json.loads((whole / "results.json").read_text("utf-8"))
    got = json.loads((cut / "results.json").read_text("utf-8"))
    assert got["domains"] == wanted["domains"]
    assert got["run"]["rows_kept_from_earlier_run"] == 10
    assert "rows_kept_from_earlier_run" not in wanted["run"]


def test_check_compares_an_allowlist(tmp_path: Path) -> None:
    ips = allowlist_ips("EU1")
    current = tmp_path / "gateway.txt"
    current.write_text("# exported\n" + "\n".join(ips[:2]) + "\n",
                       encoding="utf-8")

    result = run("check", "lindqvist-bygg.example", "-r", "EU1", "-z",
                 SAMPLE_ZONE, "--allowlist", current)
    as_json = run("check", "lindqvist-bygg.example", "-r", "EU1", "-z",
                  SAMPLE_ZONE, "--allowlist", current, "--json")

    assert result.exit_code == 0, result.output
    assert f"2 of {len(ips)} CXone allowlist IPs accepted" in result.stdout
    assert "allowlist, add: " + ", ".join(ips[2:]) in result.stdout
    assert json.loads(as_json.stdout)["allowlist"]["missing"] == list(ips[2:])
    _usage_error(run("check", "lindqvist-bygg.example", "-r", "EU1", "-z",
                     SAMPLE_ZONE, "--allowlist", tmp_path / "absent.txt"),
                 "absent.txt")


def test_resume_refuses_answers_from_another_source(
    tmp_path: Path, domains: Path
) -> None:
    out = tmp_path / "out"
    other = tmp_path / "other.zone"
    other.write_bytes(REALWORLD_ZONE.read_bytes())
    first = run("audit", domains, "--zone-file", REALWORLD_ZONE, "--out",
                out, "--no-report", "--no-progress")
    assert first.exit_code == 0, first.output

    mixed = run("audit", domains, "--zone-file", other, "--out", out,
                "--resume", "--no-report", "--no-progress")

    _usage_error(mixed, "--zone-file", "--resume")


def test_ctrl_c_while_writing_outputs_says_how_to_finish(
    tmp_path: Path, domains: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("cxone_audit.cli.finish_outputs", interrupted)

    result = run("audit", domains, "--zone-file", REALWORLD_ZONE, "--out",
                 tmp_path / "out", "--no-report", "--no-progress")

    assert result.exit_code == 130
    assert "--resume" in result.stderr
    assert "Aborted" not in result.output
