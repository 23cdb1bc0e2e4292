"""A DNS proxy that adds latency and counts queries.

``tc netem`` is not available everywhere, so latency is added in user space:
every UDP datagram and every TCP DNS message is held ``D`` ms on its way to
the server and ``D`` ms on its way back. The first message of a TCP
connection is held ``2D`` more, for the handshake a real connection would
cost. A UDP query then takes about ``2D``, a TCP query about ``4D``.

The proxy also counts what clients ask: every query message (UDP or TCP),
the distinct ``(name, type)`` pairs, and the UDP answers that came back
truncated (each costs a further TCP query).

It runs its own asyncio loop in a daemon thread, so a benchmark can start a
tool in a child process and read the counters afterwards::

    with DelayProxy(("127.0.0.1", knot_port), delay_ms=10) as proxy:
        ...  # point a tool at proxy.port
        stats = proxy.snapshot()

Run ``python -m benchmarks.proxy --upstream 127.0.0.1:5353 --delay-ms 10``
to use it by hand; it prints its port, and its counters on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

_TC = 0x02  # RFC 1035 4.1.1: TC bit, in the third octet of the header
_ID_SPACE = 1 << 16
_STALE_SECONDS = 30.0


def question(message: bytes) -> tuple[str, int] | None:
    """The ``(name, type)`` of a query's only question, or ``None``.

    The name is lower case, without the trailing dot (``""`` for the root).
    """
    # RFC 1035 4.1.1: a 12-octet header; QDCOUNT in octets 4-5.
    if len(message) < 17 or message[4:6] != b"\x00\x01":
        return None

    labels: list[bytes] = []
    pos = 12
    while pos < len(message):
        length = message[pos]
        if length == 0:
            pos += 1
            break
        if length & 0xC0:  # a query's question is never compressed
            return None
        labels.append(message[pos + 1:pos + 1 + length])
        pos += 1 + length
    if pos + 2 > len(message):
        return None

    name = b".".join(labels).decode("ascii", "replace").lower()
    return name, int.from_bytes(message[pos:pos + 2], "big")


@dataclass
class ProxyStats:
    """Counters of a proxy since its last reset.

    Attributes
    ----------
    queries
        Query messages received from clients, UDP and TCP.
    udp, tcp
        The same, by transport.
    tcp_connections
        TCP connections accepted.
    truncated
        UDP answers with the TC bit set.
    pairs
        Distinct ``(name, type)`` pairs asked.
    by_type
        Queries per record type number.
    """

    queries: int = 0
    udp: int = 0
    tcp: int = 0
    tcp_connections: int = 0
    truncated: int = 0
    pairs: set[tuple[str, int]] = field(default_factory=set)
    by_type: Counter[int] = field(default_factory=Counter)

    def count(self, message: bytes, transport: str) -> None:
        self.queries += 1
        if transport == "udp":
            self.udp += 1
        else:
            self.tcp += 1
        asked = question(message)
        if asked is not None:
            self.pairs.add(asked)
            self.by_type[asked[1]] += 1

    def copy(self) -> ProxyStats:
        return ProxyStats(self.queries, self.udp, self.tcp,
                          self.tcp_connections, self.truncated,
                          set(self.pairs), Counter(self.by_type))

    def to_dict(self) -> dict[str, Any]:
        from dns.rdatatype import to_text

        return {
            "queries": self.queries,
            "udp": self.udp,
            "tcp": self.tcp,
            "tcp_connections": self.tcp_connections,
            "truncated": self.truncated,
            "distinct_pairs": len(self.pairs),
            "by_type": {to_text(k): v for k, v in
                        sorted(self.by_type.items())},
        }


class _UpstreamUdp(asyncio.DatagramProtocol):
    def __init__(self, proxy: _Relay) -> None:
        self.proxy = proxy

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.proxy.answer_received(data)


class _ClientUdp(asyncio.DatagramProtocol):
    def __init__(self, proxy: _Relay) -> None:
        self.proxy = proxy

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.proxy.query_received(data, addr)


class _Relay:
    """The proxy's state inside its event loop."""

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        self.upstream = upstream
        self.delay = delay
        self.stats = ProxyStats()
        self.loop = asyncio.get_running_loop()
        self._pending: dict[int, tuple[Any, bytes, float]] = {}
        self._next_id = 0
        self._client: asyncio.DatagramTransport | None = None
        self._server: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.AbstractServer | None = None

    async def open(self, host: str, port: int) -> int:
        """Bind UDP and TCP on ``host:port`` (0: a free port for both)."""
        self._server, _ = await self.loop.create_datagram_endpoint(
            lambda: _UpstreamUdp(self), remote_addr=self.upstream)
        _enlarge_buffers(self._server)

        for _ in range(50):
            transport, _ = await self.loop.create_datagram_endpoint(
                lambda: _ClientUdp(self), local_addr=(host, port))
            bound = transport.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(
                    self._connection, host, bound)
            except OSError:
                transport.close()
                if port:
                    raise
                continue
            self._client = transport
            _enlarge_buffers(transport)
            self.loop.create_task(self._sweep())
            return bound
        raise OSError("no port free for both UDP and TCP")

    def close(self) -> None:
        for transport in (self._client, self._server):
            if transport is not None:
                transport.close()
        if self._tcp is not None:
            self._tcp.close()

    def _later(self, callback: Any, *args: Any, extra: float = 0.0) -> None:
        wait = self.delay + extra
        if wait > 0:
            self.loop.call_later(wait, callback, *args)
        else:
            callback(*args)

    # UDP: one upstream socket; query IDs are rewritten so that answers
    # for different clients never mix.
    def query_received(self, data: bytes, addr: Any) -> None:
        if len(data) < 12 or self._server is None:
            return
        self.stats.count(data, "udp")
        new_id = self._allocate()
        if new_id is None:
            return
        self._pending[new_id] = (addr, data[:2], time.monotonic())
        forwarded = new_id.to_bytes(2, "big") + data[2:]
        self._later(self._server.sendto, forwarded)

    def answer_received(self, data: bytes) -> None:
        if len(data) < 12 or self._client is None:
            return
        entry = self._pending.pop(int.from_bytes(data[:2], "big"), None)
        if entry is None:
            return
        addr, original_id, _ = entry
        if data[2] & _TC:
            self.stats.truncated += 1
        self._later(self._client.sendto, original_id + data[2:], addr)

    def _allocate(self) -> int | None:
        for _ in range(_ID_SPACE):
            candidate = self._next_id
            self._next_id = (self._next_id + 1) % _ID_SPACE
            if candidate not in self._pending:
                return candidate
        return None

    async def _sweep(self) -> None:
        """Forget UDP queries whose answer never came."""
        while True:
            await asyncio.sleep(5)
            limit = time.monotonic() - _STALE_SECONDS
            for key in [k for k, v in self._pending.items() if v[2] < limit]:
                del self._pending[key]

    # TCP: one upstream connection per client connection.
    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        self.stats.tcp_connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(
                *self.upstream)
        except OSError:
            writer.close()
            return
        pumps = [
            asyncio.ensure_future(self._pump(
                reader, up_writer, first_extra=2 * self.delay, count=True)),
            asyncio.ensure_future(self._pump(up_reader, writer)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            await asyncio.wait(pumps, timeout=2 * self.delay + 5)
        finally:
            for pump in pumps:
                pump.cancel()
            for end in (writer, up_writer):
                end.close()

    async def _pump(self, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter, first_extra: float = 0.0,
                    count: bool = False) -> None:
        """Copy length-prefixed DNS messages, each held ``delay`` seconds
        (the first one ``first_extra`` more), keeping their order."""
        due = 0.0
        extra = first_extra
        sends: list[asyncio.Future[None]] = []
        while True:
            try:
                head = await reader.readexactly(2)
                body = await reader.readexactly(int.from_bytes(head, "big"))
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            if count:
                self.stats.count(body, "tcp")
            due = max(self.loop.time() + self.delay + extra, due)
            extra = 0.0
            sends.append(asyncio.ensure_future(
                self._send_at(writer, head + body, due)))
        if sends:
            await asyncio.gather(*sends, return_exceptions=True)
        if writer.can_write_eof():
            try:
                writer.write_eof()
            except OSError:
                pass

    async def _send_at(self, writer: asyncio.StreamWriter, data: bytes,
                       due: float) -> None:
        wait = due - self.loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if not writer.is_closing():
            writer.write(data)


def _enlarge_buffers(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, 4 << 20)
        except OSError:
            pass


class DelayProxy:
    """A latency-adding, query-counting DNS proxy in a background thread.

    Parameters
    ----------
    upstream
        ``(address, port)`` of the DNS server to forward to.
    delay_ms
        Milliseconds each message is held in each direction.
    host, port
        Where to listen, UDP and TCP; port 0 picks a free one.
    """

    def __init__(self, upstream: tuple[str, int], delay_ms: float = 0.0,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        if delay_ms < 0:
            raise ValueError("delay_ms must not be negative")
        self.upstream = upstream
        self.delay_ms = delay_ms
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._relay: _Relay | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> DelayProxy:
        ready: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="dns-delay-proxy",
            daemon=True)
        self._thread.start()
        self.port = ready.result(timeout=30)
        return self

    def _serve(self, ready: concurrent.futures.Future[int]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def open_relay() -> int:
            self._relay = _Relay(self.upstream, self.delay_ms / 1000)
            return await self._relay.open(self.host, self.port)

        try:
            ready.set_result(loop.run_until_complete(open_relay()))
        except BaseException as exc:  # noqa: BLE001 - handed to start()
            ready.set_exception(exc)
            loop.close()
            return
        try:
            loop.run_forever()
        finally:
            if self._relay is not None:
                self._relay.close()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(
                asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    def _call(self, func: Any) -> Any:
        if self._loop is None or self._relay is None:
            raise RuntimeError("proxy not started")

        async def call() -> Any:
            return func(self._relay)

        future = asyncio.run_coroutine_threadsafe(call(), self._loop)
        return future.result(timeout=30)

    def snapshot(self) -> ProxyStats:
        """A copy of the counters."""
        return self._call(lambda relay: relay.stats.copy())

    def reset(self) -> None:
        """Zero the counters."""
        def clear(relay: _Relay) -> None:
            relay.stats = ProxyStats()
        self._call(clear)

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
        self._loop = self._thread = None

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upstream", required=True, metavar="ADDR:PORT")
    parser.add_argument("--delay-ms", type=float, default=10.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    address, _, port = args.upstream.rpartition(":")
    proxy = DelayProxy((address, int(port)), args.delay_ms,
                       port=args.port).start()
    print(f"listening on 127.0.0.1:{proxy.port} (UDP and TCP), holding "
          f"{args.delay_ms} ms each way; Ctrl-C prints the counters")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print(proxy.snapshot().to_dict())
    finally:
        proxy.stop()


if __name__ == "__main__":
    main()
