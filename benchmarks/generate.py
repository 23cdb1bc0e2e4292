"""Generate N benchmark domains and the root zone that answers for them.

The mix follows the real-world snapshot in ``benchmarks/data``: 74
organisations whose 119 SPF-publishing names use the real provider include
chains, ip4 ranges, DMARC and MX records, and real errors (missing provider
records, syntax errors, too many lookups).

An organisation is the unit that is cloned. Clone ``cXXXXX`` of
``orgNNN`` copies every record of ``orgNNN`` with the token ``orgNNN``
replaced by ``cXXXXX`` (both six characters, so no TXT character-string
grows). Every SPF-publishing name of the organisation becomes one input row
of the clone. The organisations are taken in a fresh shuffled order on each
pass, so that after ``k`` full passes every row of ``domains.csv`` appears
exactly ``k`` times; only the last pass is partial. The rows are then
shuffled and given the six CXone regions in turn.

The zone holds the snapshot unchanged (providers, and the organisations that
clones refer to) followed by the clones. There are no delegations.

Run ``python -m benchmarks.generate --n 1000 --out DIR`` to write
``DIR/root.zone``, ``DIR/domains.csv`` (``domain,region``: the kit's input)
and ``DIR/templates.csv`` (which snapshot row each domain copies).
"""

from __future__ import annotations

import argparse
import csv
import functools
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
SEED_ZONE = DATA / "realworld.zone"
SEED_DOMAINS = DATA / "domains.csv"

REGIONS = ("NA1", "AU1", "CA1", "EU1", "JP1", "UK1")

_SECTION = re.compile(r"^; -- (org\d{3})\.example\s*$")
_ORG = re.compile(r"org\d{3}(?=\.example)")
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass
class Seed:
    """The snapshot, split the way the generator needs it.

    Attributes
    ----------
    zone_text
        The whole seed zone, served unchanged.
    sections
        For each organisation token (``"org008"``), its record lines.
    rows
        For each organisation token, its SPF-publishing names with the
        snapshot's note, in file order.
    """

    zone_text: str
    sections: dict[str, list[str]] = field(default_factory=dict)
    rows: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @property
    def row_count(self) -> int:
        return sum(len(r) for r in self.rows.values())


@dataclass(frozen=True)
class Domain:
    """One generated input row."""

    domain: str
    region: str
    template: str
    clone: str
    note: str


@dataclass
class Generated:
    """What :func:`generate` wrote."""

    zone: Path
    domains: Path
    templates: Path
    rows: list[Domain]
    zone_records: int


def load_seed(zone: Path = SEED_ZONE, domains: Path = SEED_DOMAINS) -> Seed:
    """Read the snapshot: organisation sections and their SPF names."""
    text = zone.read_text(encoding="utf-8")
    seed = Seed(zone_text=text)

    current: str | None = None
    for line in text.splitlines():
        match = _SECTION.match(line)
        if match:
            current = match.group(1)
            seed.sections[current] = []
        elif current and line.strip() and not line.startswith(";"):
            seed.sections[current].append(line)

    with domains.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            token = _ORG.search(row["domain"])
            if token is None or token.group(0) not in seed.sections:
                raise ValueError(f"seed row outside any section: {row}")
            seed.rows.setdefault(token.group(0), []).append(
                (row["domain"], row["note"])
            )
    return seed


def clone_label(index: int) -> str:
    """``c`` and five base-36 digits: as long as ``orgNNN``."""
    if not 0 <= index < 36**5:
        raise ValueError("clone index out of range")
    digits = []
    for _ in range(5):
        index, rest = divmod(index, 36)
        digits.append(_BASE36[rest])
    return "c" + "".join(reversed(digits))


def rename(text: str, token: str, label: str) -> str:
    """Replace the organisation token ``token`` by ``label`` in ``text``.

    Only that token is replaced (``org006`` but not ``org060``), wherever it
    stands: in owner names, in SPF and DMARC values, in tenant host names.
    """
    return _token_pattern(token).sub(label, text)


@functools.cache
def _token_pattern(token: str) -> re.Pattern[str]:
    return re.compile(rf"\b{token}(?!\d)")


def _passes(seed: Seed, rng: random.Random) -> Iterator[str]:
    """Organisation tokens, in a fresh shuffled order on every pass."""
    tokens = sorted(seed.rows)
    while True:
        order = tokens[:]
        rng.shuffle(order)
        yield from order


def plan(seed: Seed, n: int, rng: random.Random) -> list[Domain]:
    """Choose the clones and their rows for ``n`` input domains."""
    rows: list[Domain] = []
    clones = _passes(seed, rng)
    index = 0
    while len(rows) < n:
        token = next(clones)
        label = clone_label(index)
        index += 1
        for name, note in seed.rows[token]:
            if len(rows) == n:
                break
            rows.append(Domain(rename(name, token, label), "", token,
                               label, note))

    # Shuffle, then spread the regions evenly over the shuffled order.
    rng.shuffle(rows)
    return [
        Domain(r.domain, REGIONS[i % len(REGIONS)], r.template, r.clone,
               r.note)
        for i, r in enumerate(rows)
    ]


def write_zone(seed: Seed, rows: list[Domain], path: Path) -> int:
    """Write the seed zone and one copy of each cloned section."""
    clones = {r.clone: r.template for r in rows}
    count = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(seed.zone_text.rstrip("\n") + "\n")
        out.write("\n; ===== generated clones (benchmarks/generate.py) "
                  "=====\n")
        for label, token in sorted(clones.items()):
            out.write(f"; -- {label}.example from {token}.example\n")
            for line in seed.sections[token]:
                out.write(rename(line, token, label) + "\n")
                count += 1
    return count


def write_lists(rows: list[Domain], domains: Path, templates: Path) -> None:
    """Write the kit's input and the per-row provenance."""
    with domains.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["domain", "region"])
        writer.writerows((r.domain, r.region) for r in rows)
    with templates.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["domain", "region", "template", "note"])
        for r in rows:
            original = rename(r.domain, r.clone, r.template)
            writer.writerow((r.domain, r.region, original, r.note))


def generate(n: int, out_dir: Path, seed_value: int = 20261203) -> Generated:
    """Write ``root.zone``, ``domains.csv`` and ``templates.csv``.

    Parameters
    ----------
    n
        How many input domains.
    out_dir
        Created if needed.
    seed_value
        Seed of the shuffles; the same seed gives the same files.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = load_seed()
    rows = plan(seed, n, random.Random(seed_value))

    zone = out_dir / "root.zone"
    records = write_zone(seed, rows, zone)
    domains, templates = out_dir / "domains.csv", out_dir / "templates.csv"
    write_lists(rows, domains, templates)
    return Generated(zone, domains, templates, rows, records)


def describe(generated: Generated) -> str:
    """A few lines about the generated mix."""
    rows = generated.rows
    regions = Counter(r.region for r in rows)
    clones = len({r.clone for r in rows})
    notes = Counter(part.strip() for r in rows for part in r.note.split(";"))
    shares = ", ".join(
        f"{key} {100 * notes[key] / len(rows):.0f}%"
        for key in ("has ip4", "4+ includes", "uses Microsoft 365 include",
                    "simple Google Workspace", "references names not in "
                    "the snapshot")
    )
    return (
        f"{len(rows)} domains from {clones} organisation clones, "
        f"{generated.zone_records} cloned records; regions "
        + ", ".join(f"{k} {regions[k]}" for k in REGIONS)
        + f"; {shares}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=20261203)
    args = parser.parse_args()
    generated = generate(args.n, args.out, args.seed)
    print(describe(generated))
    print(f"wrote {generated.zone}, {generated.domains}, "
          f"{generated.templates}")


if __name__ == "__main__":
    main()
