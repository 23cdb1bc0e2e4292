"""Shared fixtures: Knot DNS on loopback and the test data sets.

``knot_for(zone)`` starts one ``knotd`` per distinct master file for the
whole session and returns its ``(host, port)``. Without ``knotd`` the tests
that need it are skipped, unless ``CXONE_REQUIRE_KNOT=1`` is set (CI sets
it): then they fail, so a CI run can never pass without real DNS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .knot import REQUIRE_ENV, KnotServer, find_knotd, knot_required

TESTS = Path(__file__).resolve().parent
PROJECT = TESTS.parent
REALWORLD = TESTS / "data" / "realworld"
REALWORLD_ZONE = REALWORLD / "realworld.zone"
REALWORLD_DOMAINS = REALWORLD / "domains.csv"
REALWORLD_EXPECTED = REALWORLD / "expected.tsv"
SAMPLE_ZONE = PROJECT / "data" / "sample.zone"
SAMPLE_DOMAINS = PROJECT / "data" / "sample_domains.csv"

#: Fixtures that start Knot; a test using one is marked ``knot``.
KNOT_FIXTURES = frozenset({"knot_for", "sample_knot", "realworld_knot"})

KnotFactory = Callable[[Path], tuple[str, int]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a Knot fixture, so ``-m knot`` finds it."""
    for item in items:
        if KNOT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.knot)


def _knot_unavailable() -> None:
    reason = (
        "knotd (Knot DNS) not found: install the Debian package 'knot' to "
        "run the real-DNS tests"
    )
    if knot_required():
        pytest.fail(f"{reason}; {REQUIRE_ENV} is set, so this is an error",
                    pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def knot_for(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KnotFactory]:
    """A function: master file -> ``(host, port)`` of a knotd serving it.

    The file is served as the root zone ``.`` on 127.0.0.1 and ::1. Each
    distinct file gets one server for the whole session; every server is
    stopped when the session ends.
    """
    if find_knotd() is None:
        _knot_unavailable()
    servers: dict[Path, KnotServer] = {}

    def serve(zone: Path | str) -> tuple[str, int]:
        path = Path(zone).resolve()
        if path not in servers:
            workdir = tmp_path_factory.mktemp("knot")
            servers[path] = KnotServer(path, workdir).start()
        return servers[path].address

    try:
        yield serve
    finally:
        for server in servers.values():
            server.stop()


def sample_paths() -> tuple[Path, Path]:
    """The sample zone and its domains; the real-world set until they exist.

    The project's own sample (``data/sample.zone`` and
    ``data/sample_domains.csv``) is used when both files are there.
    """
    if SAMPLE_ZONE.is_file() and SAMPLE_DOMAINS.is_file():
        return SAMPLE_ZONE, SAMPLE_DOMAINS
    return REALWORLD_ZONE, REALWORLD_DOMAINS


@pytest.fixture(scope="session")
def sample_zone() -> Path:
    """The master file of the sample data set."""
    return sample_paths()[0]


@pytest.fixture(scope="session")
def sample_domains() -> Path:
    """The input spreadsheet of the sample data set."""
    return sample_paths()[1]


@pytest.fixture(scope="session")
def sample_knot(knot_for: KnotFactory, sample_zone: Path) -> tuple[str, int]:
    """Knot serving the sample zone: ``(host, port)``."""
    return knot_for(sample_zone)


@pytest.fixture(scope="session")
def realworld_knot(knot_for: KnotFactory) -> tuple[str, int]:
    """Knot serving ``data/realworld/realworld.zone``: ``(host, port)``."""
    return knot_for(REALWORLD_ZONE)
