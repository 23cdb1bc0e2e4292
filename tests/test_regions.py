import pytest

from cxone_audit.errors import RegionError
from cxone_audit.regions import (
    REGION_CODES,
    allowlist_ips,
    get_region,
    load_regions,
    spf_ips,
    table_date,
)


def test_table_has_the_47_rows_of_the_source_page() -> None:
    frame = load_regions()

    assert len(frame) == 47
    assert (frame["purpose"] == "allowlist").sum() == 31
    assert (frame["purpose"] == "spf").sum() == 16
    assert set(frame["region"]) == set(REGION_CODES)
    assert list(frame.columns) == ["region", "region_name", "region_name_pt",
                                   "purpose", "ip", "source", "taken"]
    assert not frame.duplicated(["region", "purpose", "ip"]).any()


def test_every_spf_ip_is_also_in_its_region_allowlist() -> None:
    for code in REGION_CODES:
        assert set(spf_ips(code)) <= set(allowlist_ips(code))


def test_values_from_the_source_page() -> None:
    assert spf_ips("EU1") == ("216.20.244.25", "216.20.248.25",
                              "3.73.46.42", "18.193.197.37")
    assert spf_ips("JP1") == ("54.168.59.186", "18.176.237.104")
    assert len(allowlist_ips("NA1")) == 9
    assert table_date() == "2026-12"


@pytest.mark.parametrize(("text", "code"), [
    ("EU1", "EU1"), ("eu1", "EU1"), ("eu", "EU1"), ("Europe", "EU1"),
    ("europa", "EU1"), (" Reino Unido ", "UK1"), ("America do Norte", "NA1"),
    ("América do Norte", "NA1"), ("JAPÃO", "JP1"), ("Austrália", "AU1"),
    ("canada", "CA1"), ("united kingdom", "UK1"),
])
def test_regions_by_code_or_name_in_english_or_portuguese(
    text: str, code: str
) -> None:
    assert get_region(text).code == code


@pytest.mark.parametrize("text", ["", "EU2", "Mars", "Brasil", "N A 1"])
def test_unknown_region_lists_the_valid_ones(text: str) -> None:
    with pytest.raises(RegionError) as caught:
        get_region(text)

    for code in REGION_CODES:
        assert code in str(caught.value)


def test_filters() -> None:
    frame = load_regions("Reino Unido", "spf")

    assert list(frame["ip"]) == ["52.56.74.209", "18.132.96.228"]
    with pytest.raises(ValueError, match="purpose"):
        load_regions(purpose="send")  # type: ignore[arg-type]
