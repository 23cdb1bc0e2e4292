"""The allowlist check inside a batch audit: run-wide and per-row files.

The expectations are derived from the region tables with plain
``ipaddress`` containment, not from the comparison code under test.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path

import pytest

from cxone_audit.batch import AllowlistFiles
from cxone_audit.regions import REGION_CODES, allowlist_ips

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


def test_an_absolute_cell_ignores_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "na.txt"
    path.write_text(NA1[0] + "\n")
    files = AllowlistFiles(folder=tmp_path / "elsewhere")

    current = files.for_row({"allowlist_file": str(path)})

    assert current is not None and current.entries == (NA1[0],)


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
