"""CXone regions and their IP tables.

The tables come from NICE's help page "CXone System Email" and ship with the
package as ``data/regions.csv``: one row per (region, purpose, IP), 47 rows.

``allowlist`` IPs are the addresses CXone system e-mail (password resets,
chat transcripts, reports) comes from; a customer's mail server should accept
them. ``spf`` IPs are the addresses ACD channel e-mail leaves from when the
customer's domain is not verified in Amazon SES; the domain's SPF record has
to authorise them.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import pandas as pd

from .errors import RegionError

__all__ = [
    "PURPOSES",
    "REGION_CODES",
    "Region",
    "allowlist_ips",
    "get_region",
    "load_regions",
    "spf_ips",
    "table_date",
]

Purpose = Literal["allowlist", "spf"]
PURPOSES: tuple[Purpose, ...] = ("allowlist", "spf")
REGION_CODES: tuple[str, ...] = ("NA1", "AU1", "CA1", "EU1", "JP1", "UK1")

# Short forms people type, beyond codes and full names.
_EXTRA_ALIASES = {
    "na": "NA1", "au": "AU1", "ca": "CA1", "eu": "EU1", "jp": "JP1",
    "uk": "UK1", "gb": "UK1", "us": "NA1", "usa": "NA1",
}


@dataclass(frozen=True)
class Region:
    """One CXone region.

    Attributes
    ----------
    code
        CXone's area code, such as ``"EU1"``.
    name
        The region's English name.
    name_pt
        The region's Portuguese (pt-BR) name.
    """

    code: str
    name: str
    name_pt: str

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


@functools.cache
def _table() -> pd.DataFrame:
    source = resources.files("cxone_audit").joinpath("data/regions.csv")
    with source.open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype=str, keep_default_na=False)
    return frame


def load_regions(
    region: str | None = None, purpose: Purpose | None = None
) -> pd.DataFrame:
    """Return the region IP tables as a DataFrame.

    Parameters
    ----------
    region
        Keep only this region (a code or a name, see :func:`get_region`).
    purpose
        Keep only ``"allowlist"`` or ``"spf"`` rows.

    Returns
    -------
    pandas.DataFrame
        Columns ``region``, ``region_name``, ``region_name_pt``, ``purpose``,
        ``ip``, ``source`` and ``taken``, in the order of the source page.
    """
    frame = _table()

    if region is not None:
        frame = frame[frame["region"] == get_region(region).code]

    if purpose is not None:
        if purpose not in PURPOSES:
            raise ValueError(
                f"unknown purpose {purpose!r}; use 'allowlist' or 'spf'"
            )
        frame = frame[frame["purpose"] == purpose]

    return frame.reset_index(drop=True).copy()


def _fold(text: str) -> str:
    """Lower-case, strip accents and collapse spaces, for name matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().replace("-", " ").split())


@functools.cache
def _aliases() -> dict[str, Region]:
    aliases: dict[str, Region] = {}
    for row in _table().drop_duplicates("region").itertuples():
        found = Region(row.region, row.region_name, row.region_name_pt)
        for text in (row.region, row.region_name, row.region_name_pt):
            aliases[_fold(text)] = found
    for short, code in _EXTRA_ALIASES.items():
        aliases[short] = aliases[_fold(code)]
    return aliases


def get_region(value: str | Region) -> Region:
    """Find a region by code or name, in English or Portuguese.

    Matching ignores case, accents and surrounding space, so ``"eu1"``,
    ``"EU"``, ``"Europe"``, ``"europa"`` and ``"Reino Unido"`` all work.

    Raises
    ------
    RegionError
        If nothing matches; the message lists the valid regions.
    """
    if isinstance(value, Region):
        return value

    found = _aliases().get(_fold(str(value)))
    if found is None:
        raise RegionError(str(value), list(REGION_CODES))
    return found


def _ips(region: str | Region, purpose: Purpose) -> tuple[str, ...]:
    return _ips_of(get_region(region).code, purpose)


@functools.cache
def _ips_of(code: str, purpose: Purpose) -> tuple[str, ...]:
    return tuple(load_regions(code, purpose)["ip"])


def spf_ips(region: str | Region) -> tuple[str, ...]:
    """The IPv4 addresses a domain's SPF record must authorise."""
    return _ips(region, "spf")


def allowlist_ips(region: str | Region) -> tuple[str, ...]:
    """The IPv4 addresses a mail server should accept CXone mail from."""
    return _ips(region, "allowlist")


def table_date() -> str:
    """When the bundled tables were taken from the source page (YYYY-MM)."""
    return str(_table()["taken"].iloc[0])
