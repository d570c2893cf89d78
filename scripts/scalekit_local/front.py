"""The public listener: one port that sends each connection to the gRPC or the HTTP backend.

With TLS the negotiated ALPN decides (h2 -> gRPC, http/1.1 -> HTTP). A client that negotiates no
ALPN (axios in the Node SDK) and every plaintext connection are sniffed instead: the HTTP/2
connection preface starts with "PRI " and goes to gRPC (h2c), anything else is HTTP/1.1. The bytes
read while sniffing are replayed to the backend, then both directions are piped until one side
closes. Backends listen on unix sockets, so only the public port is opened. Sniffing has
header_deadline.HEADER_TIMEOUT seconds in total.

Fast path: a TLS connection that negotiated http/1.1 (Python's requests and httpx, browsers) is
handed straight to an HTTP protocol of the backend's server in this process (`http_protocol`),
without the hop through the unix socket; this roughly doubles login throughput.
"""
from __future__ import annotations

import asyncio
import logging
import ssl

from . import header_deadline

log = logging.getLogger("scalekit_local.front")

PREFACE_START = b"PRI "
CHUNK = 256 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, half_close: bool) -> None:
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if half_close and writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
        pass


class Front:
    def __init__(self, host: str, port: int, ssl_context: ssl.SSLContext | None, grpc_socket: str, http_socket: str):
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.grpc_socket, self.http_socket = grpc_socket, http_socket
        self.server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task] = set()
        self.http_protocol = None  # () -> asyncio.Protocol of the HTTP backend (server.py sets it)

    async def start(self) -> int:
        # Always the IPv4 loopback: "localhost" may also resolve to ::1, and with port 0 each address
        # would get its own port. Clients that try ::1 first fall back to 127.0.0.1.
        bind = "127.0.0.1" if self.host == "localhost" else self.host
        self.server = await asyncio.start_server(
            self._handle, bind, self.port, ssl=self.ssl_context, backlog=1024,
            ssl_handshake_timeout=10 if self.ssl_context else None, reuse_address=True,
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(self._connections, timeout=2)
        if self.server is not None:
            try:
                await asyncio.wait_for(self.server.wait_closed(), 2)
            except TimeoutError:
                pass

    async def _route(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[str, bytes]:
        ssl_object = writer.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if alpn == "h2":
            return self.grpc_socket, b""
        if alpn == "http/1.1":
            return self.http_socket, b""
        head = b""
        async with asyncio.timeout(header_deadline.HEADER_TIMEOUT):  # in total: a dripping client gains nothing
            while len(head) < len(PREFACE_START):
                chunk = await reader.read(CHUNK)
                if not chunk:
                    break
                head += chunk
        target = self.grpc_socket if head.startswith(PREFACE_START) else self.http_socket
        return target, head

    def _hand_over(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Give the client's transport to a new HTTP protocol; False if the stream already buffered a lot."""
        buffered = bytes(getattr(reader, "_buffer", b""))
        if len(buffered) >= 65536:
            return False
        protocol = self.http_protocol()
        protocol.front_writer = writer  # keep the StreamWriter alive: collecting it would close the transport
        writer.transport.set_protocol(protocol)
        protocol.connection_made(writer.transport)
        if buffered:
            reader._buffer.clear()
            protocol.data_received(buffered)
        return True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        upstream_writer = None
        try:
            target, head = await self._route(reader, writer)
            if not head and reader.at_eof():
                return
            if target == self.http_socket and not head and self.http_protocol is not None and self._hand_over(reader, writer):
                writer = None  # the HTTP protocol owns the connection now
                return
            upstream_reader, upstream_writer = await asyncio.open_unix_connection(target)
            if head:
                upstream_writer.write(head)
            # Client EOF is passed on as a half-close (HTTP/1.1 clients may still await a response);
            # backend EOF ends the connection, since TLS transports cannot half-close.
            to_backend = asyncio.ensure_future(_pipe(reader, upstream_writer, half_close=True))
            await _pipe(upstream_reader, writer, half_close=False)
            to_backend.cancel()
        except (TimeoutError, ConnectionError, ssl.SSLError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            for w in (upstream_writer, writer):
                if w is not None:
                    try:
                        w.close()
                    except (OSError, RuntimeError):  # already closed, or the loop is shutting down
                        pass
            self._connections.discard(task)
