"""Turn the openspf conformance suite's ``zonedata`` into master files.

Each scenario of ``data/spf-suite/rfc7208-tests.yml`` describes its DNS as a
mapping of names to records. The suite is run through the kit's own stack:
the records are written as RFC 1035 master-file text, read back by
:class:`~cxone_audit.resolver.ZoneFileResolver`, cached by the resolver and
evaluated by :class:`~cxone_audit.spf.SpfEvaluator`.

The suite's ``TIMEOUT`` marker cannot be written in a master file, so a small
subclass answers ``TIMEOUT`` for those questions: record types listed before
the marker answer normally, every other type times out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cxone_audit.resolver import Answer, ZoneFileResolver

SUITE = Path(__file__).parent / "data" / "spf-suite" / "rfc7208-tests.yml"


def load_scenarios(path: Path = SUITE) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def _octets(value: str) -> bytes:
    # The suite writes raw octets as the code points U+0000..U+00FF.
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _quote(value: str) -> str:
    data = _octets(value)
    out = []
    for byte in data:
        if byte in (0x22, 0x5C):
            out.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def _txt(value: Any) -> str:
    strings = value if isinstance(value, list) else [value]
    strings = strings or [""]  # a TXT record with no strings reads as ""
    return " ".join(_quote(s) for s in strings)


def _owner(name: str) -> str:
    escaped = "".join(
        c if c.isalnum() or c in "-_.*" else f"\\{ord(c):03d}"
        for c in name
    )
    return escaped.rstrip(".") + "."


def _rdata(rtype: str, value: Any) -> str | None:
    if value == "NONE":
        return None
    if rtype in ("TXT", "SPF"):
        return _txt(value)
    if rtype == "MX":
        preference, host = value
        return f"{preference} {_owner(host) if host else '.'}"
    if rtype in ("PTR", "CNAME"):
        return _owner(value)
    return str(value)


def scenario_zone(zonedata: dict[str, list[Any]]) -> tuple[str, set]:
    """Master-file text for a scenario, and its timing-out questions.

    Returns
    -------
    tuple
        The zone text and a set of ``(name, type)`` pairs, with ``"*"`` as
        type for "every type not listed before TIMEOUT".
    """
    lines = ["@ 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300",
             "@ 300 IN NS ns.test."]
    timeouts: set[tuple[str, str]] = set()

    for name, records in zonedata.items():
        owner = _owner(name)
        types = {next(iter(r)) for r in records if isinstance(r, dict)}
        listed: list[str] = []
        for record in records:
            if record == "TIMEOUT":
                timeouts.add((name.lower().rstrip("."), ",".join(listed)))
                continue
            rtype, value = next(iter(record.items()))
            if value != "NONE":
                listed.append(rtype)
            # The suite's SPF entries also serve as TXT when no TXT is given.
            if rtype == "SPF" and "TXT" in types:
                continue
            rtype = "TXT" if rtype == "SPF" else rtype
            rdata = _rdata(rtype, value)
            if rdata is not None:
                lines.append(f"{owner} 300 IN {rtype} {rdata}")
            elif not any(line.startswith(owner + " ") for line in lines):
                # NONE: the name exists but has no record of this type.
                lines.append(f"{owner} 300 IN HINFO \"x\" \"y\"")

    return "\n".join(lines) + "\n", timeouts


class SuiteResolver(ZoneFileResolver):
    """A zone-file resolver that also times out where the suite says so."""

    timeouts: set[tuple[str, str]]

    @classmethod
    def for_scenario(cls, zonedata: dict[str, list[Any]]) -> SuiteResolver:
        text, timeouts = scenario_zone(zonedata)
        resolver = cls.from_text(text)
        resolver.timeouts = timeouts
        return resolver

    async def _ask(self, name: str, rtype: str) -> Answer:
        for owner, answered in self.timeouts:
            if owner == name and rtype not in answered.split(","):
                self.stats.sent += 1
                return Answer(name, rtype, "TIMEOUT", detail="suite TIMEOUT")
        return await super()._ask(name, rtype)
