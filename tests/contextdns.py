"""DNS helpers shared by the DMARC, MX and SES tests.

``CONTEXT_ZONE`` is one root zone holding every case; the unit tests read it
with ZoneFileResolver, and the Knot tests serve the same file with knotd and
ask it with LiveResolver, so both backends must say the same.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cxone_audit.resolver import Answer, Resolver

CONTEXT_ZONE = Path(__file__).resolve().parent / "data" / "context" / (
    "context.zone"
)


class FailingResolver(Resolver):
    """Answer from ``inner``, except the names in ``failing``.

    Those get a temporary failure (``TIMEOUT`` unless told), as a resolver
    that got no answer in time would return. Every name asked is kept in
    ``asked``, in order.
    """

    def __init__(self, inner: Resolver, failing: Iterable[str],
                 rcode: str = "TIMEOUT") -> None:
        super().__init__()
        self.inner = inner
        self.failing = {n.lower() for n in failing}
        self.rcode = rcode
        self.asked: list[tuple[str, str]] = []

    def describe(self) -> str:
        return "test resolver with failures"

    async def _ask(self, name: str, rtype: str) -> Answer:
        self.asked.append((name, rtype))
        if name in self.failing:
            return Answer(name, rtype, self.rcode, detail="no answer in time")
        return await self.inner.query(name, rtype)


def run(coro: Any) -> Any:
    """Run one coroutine to the end."""
    return asyncio.run(coro)


@contextmanager
def silent_server() -> Iterator[str]:
    """A UDP port on 127.0.0.1 that never answers: ``"host:port"``.

    Queries sent there time out, the way a dead nameserver makes them.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{udp.getsockname()[1]}"
