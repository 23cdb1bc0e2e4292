from pathlib import Path

import pandas as pd
import pytest

from cxone_audit.errors import InputFileError, RegionError
from cxone_audit.inputs import (
    find_cell,
    normalise_domain,
    read_rows,
    rows_from_frame,
)


@pytest.mark.parametrize(("cell", "domain", "note"), [
    ("Example.COM.", "example.com", "lower-cased"),
    ("  example.com ", "example.com", "surrounding"),
    ("postmaster@Example.com", "example.com", "e-mail"),
    ("mailto:ops@example.com", "example.com", "mailto"),
    ("https://www.example.com/contact?x=1", "www.example.com", "URL"),
    ("www.example.com", "www.example.com", "URL"),
    ("bücher.example", "xn--bcher-kva.example", "IDNA"),
    ("example.com.", "example.com", "trailing dot"),
])
def test_normalisation_is_noted(cell: str, domain: str, note: str) -> None:
    name, notes, error = normalise_domain(cell)

    assert (name, error) == (domain, "")
    assert any(note.lower() in n.lower() for n in notes)


def test_clean_name_has_no_notes() -> None:
    assert normalise_domain("example.com") == ("example.com", [], "")


@pytest.mark.parametrize(("cell", "why"), [
    ("", "empty"), ("   ", "empty"), ("localhost", "no dot"),
    ("exa mple.com", "not a valid"), ("-bad.example", "not a valid"),
    ("a" * 64 + ".example", "not a valid"), ("192.0.2.1", "IP address"),
    ("x." * 130 + "example", "253"),
])
def test_bad_cells_are_errors(cell: str, why: str) -> None:
    name, _, error = normalise_domain(cell)

    assert name is None
    assert why in error


def test_rows_in_equal_rows_out_with_reasons() -> None:
    frame = pd.DataFrame({
        "Domain": ["a.example", "", "A.example.", "b.example", "not a name",
                   "c.example"],
        "Region": ["EU1", "EU1", "eu", "Mars", "EU1", ""],
        "owner": ["x", "y", "z", "w", "v", "u"],
    })

    rows = rows_from_frame(frame, region="UK1")

    assert [r.row for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r.columns for r in rows][0] == {"owner": "x"}
    assert rows[0].error == ""
    assert "empty" in rows[1].error
    assert "duplicate of row 1" in rows[2].error
    assert "unknown CXone region" in rows[3].error
    assert "not a domain name" in rows[4].error
    assert rows[5].region is not None and rows[5].region.code == "UK1"


def test_same_domain_in_two_regions_is_not_a_duplicate() -> None:
    frame = pd.DataFrame({"domain": ["a.example", "a.example"],
                          "region": ["EU1", "UK1"]})

    assert [r.error for r in rows_from_frame(frame)] == ["", ""]


def test_missing_region_without_default_is_a_row_error() -> None:
    rows = rows_from_frame(pd.DataFrame({"domain": ["a.example"]}))

    assert "--region" in rows[0].error


def test_bad_default_region_is_an_error() -> None:
    with pytest.raises(RegionError):
        rows_from_frame(pd.DataFrame({"domain": ["a.example"]}), "Mars")


def test_csv_and_xlsx_read_the_same(tmp_path: Path) -> None:
    frame = pd.DataFrame({"domain": ["a.example", "not a domain", "b.example"],
                          "region": ["EU1", "EU1", "NA1"],
                          "ticket": ["007", "", "12"]})
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_excel(tmp_path / "d.xlsx", index=False)

    from_csv = read_rows(tmp_path / "d.csv")
    from_xlsx = read_rows(tmp_path / "d.xlsx")

    assert from_csv == from_xlsx
    assert from_csv[0].columns == {"ticket": "007"}
    assert from_csv[1].error


def test_blank_lines_in_csv_are_kept_as_rows(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("domain,region\na.example,EU1\n,\nb.example,EU1\n")

    rows = read_rows(path)

    assert len(rows) == 3
    assert "empty" in rows[1].error


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252",
                                      "latin-1", "utf-16"])
def test_csv_in_the_encodings_spreadsheets_save(
    tmp_path: Path, encoding: str
) -> None:
    # Excel on Windows saves "CSV" as Windows-1252 in western locales and
    # "Unicode text" as UTF-16 with a byte-order mark.
    path = tmp_path / "d.csv"
    text = "domain;region;owner\nJörg.example;Europa;José Müller\n"
    path.write_bytes(text.encode(encoding))

    rows = read_rows(path)

    assert [r.domain for r in rows] == ["xn--jrg-sna.example"]  # jörg
    assert rows[0].region is not None and rows[0].region.code == "EU1"
    assert rows[0].columns == {"owner": "José Müller"}


def test_portuguese_headers(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("Domínio,REGIÃO,cliente\na.example,Japão,x\n",
                    encoding="utf-8")

    rows = read_rows(path)

    assert rows[0].domain == "a.example"
    assert rows[0].region is not None and rows[0].region.code == "JP1"
    assert rows[0].columns == {"cliente": "x"}


@pytest.mark.parametrize(("name", "content", "why"), [
    ("missing.csv", None, "not found"),
    ("d.csv", "name,region\na.example,EU1\n", "'domain' column"),
    ("d.json", "{}", ".csv or .xlsx"),
    ("d.xlsx", "domain\na.example\n", "not an Excel workbook"),
    ("d.xls", "not a zip", ".csv or .xlsx"),
])
def test_unreadable_inputs(
    tmp_path: Path, name: str, content: str | None, why: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)

    with pytest.raises(InputFileError, match=why):
        read_rows(path, "EU1")


@pytest.mark.parametrize("header", ["ses_verified", " SES Verified ",
                                    "Ses_Verified"])
def test_find_cell_matches_headers_loosely(header: str) -> None:
    columns = {"owner": "x", header: "yes"}

    assert find_cell(columns, "ses_verified") == "yes"


def test_find_cell_takes_any_of_several_names() -> None:
    columns = {"Allowlist File": "lists/eu.txt"}

    assert find_cell(columns, "allowlist", "allowlist_file") == "lists/eu.txt"
    assert find_cell(columns, "ses_verified") is None
    assert find_cell({"allowlist": None}, "allowlist") is None
