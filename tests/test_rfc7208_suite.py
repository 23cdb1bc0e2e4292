"""The openspf RFC 7208 conformance suite, through the kit's DNS stack.

Every test of every scenario runs: master-file text built from the
scenario's ``zonedata`` -> ZoneFileResolver (with its cache) -> spftrace's
``check_host()`` -> the kit's verdict. The suite is BSD-licensed; its notice
is in ``data/spf-suite/rfc7208-tests.LICENSE``.
"""

from __future__ import annotations

import asyncio

import pytest

from cxone_audit.spf import SpfEvaluator

from .spfsuite import SuiteResolver, load_scenarios

SCENARIOS = load_scenarios()
CASES = [
    pytest.param(scenario, name, test, id=f"{name}")
    for scenario in SCENARIOS
    for name, test in scenario["tests"].items()
]


def test_suite_is_complete() -> None:
    assert len(SCENARIOS) == 16
    assert len(CASES) == 203


async def _run(scenario: dict, test: dict):
    resolver = SuiteResolver.for_scenario(scenario["zonedata"])
    evaluator = SpfEvaluator(resolver)
    return await evaluator.evaluate(
        test["host"], test.get("mailfrom") or "", test.get("helo") or ""
    )


@pytest.mark.parametrize(("scenario", "name", "test"), CASES)
def test_rfc7208(scenario: dict, name: str, test: dict) -> None:
    verdict = asyncio.run(_run(scenario, test))

    expected = test["result"]
    expected = expected if isinstance(expected, list) else [expected]
    assert verdict.result in expected, test.get("description", name)
    # The suite writes "DEFAULT" where no exp= text applies. Case is not
    # compared: the suite keeps the case of an IPv6 address as typed in its
    # %{i} nibbles, and RFC 7208 7.3 does not fix the case of hex digits.
    if "explanation" in test and verdict.result == "fail":
        wanted = test["explanation"]
        if wanted == "DEFAULT":
            assert verdict.explanation is None
        else:
            assert (verdict.explanation or "").lower() == wanted.lower()
