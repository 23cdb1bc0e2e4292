"""Serve a benchmark's root zone with Knot DNS (``knotd``) on 127.0.0.1.

The server is the test suite's (:mod:`tests.knot`), started for a big
generated zone: served where it is rather than copied, given minutes to
load, on IPv4 only (the proxy in front of it speaks IPv4), logging only
warnings. One root zone ``.`` holds every name, so names it lacks get
NXDOMAIN, as on the Internet.
"""

from __future__ import annotations

from pathlib import Path

from tests.knot import KnotError, KnotServer, find_knotd

__all__ = ["KnotError", "KnotServer", "find_knotd", "knot_server"]


def knot_server(zone: Path, workdir: Path) -> KnotServer:
    """A :class:`~tests.knot.KnotServer` for ``zone``, not yet started."""
    return KnotServer(
        zone, workdir, hosts=("127.0.0.1",), copy_zone=False,
        ready_seconds=600.0, log_level="warning",
    )
