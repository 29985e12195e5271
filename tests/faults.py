"""A Kafka wire-protocol proxy that injects broker errors, for fault tests.

Clients connect to the proxy (the broker advertises the proxy's address), which
relays every request and response unchanged, except that, on demand, it rewrites
the error code of the next Produce responses, as a broker that fences a producer
or loses its sequence state would answer.
"""

from __future__ import annotations

import socket
import struct
import threading

__all__ = ["FaultProxy", "INVALID_PRODUCER_EPOCH", "OUT_OF_ORDER_SEQUENCE_NUMBER"]

PRODUCE = 0
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47
#: Produce versions from 9 on use the flexible (compact) encoding.
PRODUCE_FLEXIBLE_FROM = 9


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _read_frame(sock: socket.socket) -> bytes | None:
    head = _read_exact(sock, 4)
    if head is None:
        return None
    body = _read_exact(sock, struct.unpack(">i", head)[0])
    return None if body is None else head + body


def _cut(sock: socket.socket) -> None:
    """Close a connection even while another thread waits on it (close alone would not)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _first_partition_error_at(frame: bytes, version: int) -> int:
    """Byte offset, in a Produce response frame, of the first partition's error code."""
    pos = 8  # size, correlation id
    if version >= PRODUCE_FLEXIBLE_FROM:
        tags, pos = _uvarint(frame, pos)  # response header tagged fields (none expected)
        _, pos = _uvarint(frame, pos)  # topics: compact array length
        name_len, pos = _uvarint(frame, pos)
        pos += name_len - 1
        _, pos = _uvarint(frame, pos)  # partitions: compact array length
    else:
        pos += 4  # topics: array length
        (name_len,) = struct.unpack_from(">h", frame, pos)
        pos += 2 + name_len
        pos += 4  # partitions: array length
    return pos + 4  # past the partition index


class FaultProxy:
    """Relays Kafka connections from a local port to `upstream` (HOST:PORT)."""

    def __init__(self, upstream: str, port: int) -> None:
        host, up_port = upstream.rsplit(":", 1)
        self.upstream = (host, int(up_port))
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._fail: list[int] = []
        self.injected = 0
        self._closed = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def fail_produce(self, error_code: int, times: int = 1) -> None:
        """Answer the next `times` Produce responses with `error_code` (the data stays written)."""
        with self._lock:
            self._fail.extend([error_code] * times)

    def close(self) -> None:
        """Stop listening and cut every relayed connection."""
        self._closed = True
        self._listener.close()
        for sock in self._sockets:
            _cut(sock)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()  # the broker is away: so is the proxy
                continue
            self._sockets += [client, server]
            pending: dict[int, tuple[int, int]] = {}
            threading.Thread(target=self._requests, args=(client, server, pending), daemon=True).start()
            threading.Thread(target=self._responses, args=(server, client, pending), daemon=True).start()

    def _requests(self, src: socket.socket, dst: socket.socket, pending: dict[int, tuple[int, int]]) -> None:
        try:
            while (frame := _read_frame(src)) is not None:
                api_key, version, correlation = struct.unpack_from(">hhi", frame, 4)
                pending[correlation] = (api_key, version)
                dst.sendall(frame)
        except OSError:
            pass
        finally:
            _cut(dst)

    def _responses(self, src: socket.socket, dst: socket.socket, pending: dict[int, tuple[int, int]]) -> None:
        try:
            while (frame := _read_frame(src)) is not None:
                (correlation,) = struct.unpack_from(">i", frame, 4)
                api_key, version = pending.pop(correlation, (-1, -1))
                if api_key == PRODUCE:
                    with self._lock:
                        error = self._fail.pop(0) if self._fail else None
                    if error is not None:
                        at = _first_partition_error_at(frame, version)
                        frame = frame[:at] + struct.pack(">h", error) + frame[at + 2 :]
                        self.injected += 1
                dst.sendall(frame)
        except OSError:
            pass
        finally:
            _cut(dst)
