"""A TCP proxy that makes loopback behave like a distant link (``tc netem`` is not available here).

Each direction of each connection delays every chunk by ``delay`` seconds, lets at most ``window``
bytes be unacknowledged per round trip (a TCP window: one stream moves at most window / RTT),
charges a new connection's first request one extra round trip (the TCP handshake), and
optionally shares a link of ``rate`` bytes/s between all connections. Threads, no dependencies;
fast enough for a few hundred MB/s on loopback, which is above any link it imitates.
"""

from __future__ import annotations

import collections
import queue
import socket
import threading
import time

# Bytes read from a socket per step.
CHUNK = 256 << 10


class DelayProxy:
    """``with DelayProxy(port, delay=0.02) as proxy:`` then connect to ``proxy.port``.

    Args:
        target_port: the loopback port to forward to.
        delay: one-way delay in seconds (the round trip is twice this).
        window: unacknowledged bytes allowed per direction of one connection.
        rate: link capacity in bytes/s shared by all connections (0 = unlimited).
    """

    def __init__(self, target_port: int, *, delay: float, window: int = 4 << 20, rate: float = 0) -> None:
        self.target_port = target_port
        self.delay = delay
        self.window = window
        self.rate = rate
        self._link_free = {"up": 0.0, "down": 0.0}
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False

    def __enter__(self) -> DelayProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            writers = [self._pipe(client, upstream, "up"), self._pipe(upstream, client, "down")]
            threading.Thread(target=self._close_after, args=(writers, client, upstream), daemon=True).start()

    @staticmethod
    def _close_after(writers: list[threading.Thread], *sockets: socket.socket) -> None:
        for writer in writers:
            writer.join()
        for sock in sockets:
            sock.close()

    def _deliver_at(self, direction: str, size: int, now: float) -> float:
        if not self.rate:
            return now + self.delay
        with self._lock:  # serialization on the shared link, then propagation
            start = max(now, self._link_free[direction])
            self._link_free[direction] = start + size / self.rate
            return self._link_free[direction] + self.delay

    def _pipe(self, src: socket.socket, dst: socket.socket, direction: str) -> threading.Thread:
        """Start moving bytes from ``src`` to ``dst``; returns the writer thread (ends after EOF)."""
        chunks: queue.Queue[tuple[float, bytes] | None] = queue.Queue()

        def read() -> None:
            in_flight: collections.deque[tuple[float, int]] = collections.deque()  # (acknowledged at, bytes)
            unacked = 0
            # A new connection's first request waits one more round trip: the TCP handshake, which
            # the kernel completes locally before this proxy sees the connection.
            handshake = 2 * self.delay if direction == "up" else 0.0
            try:
                while True:
                    now = time.monotonic()
                    while in_flight and in_flight[0][0] <= now:
                        unacked -= in_flight.popleft()[1]
                    if unacked >= self.window:
                        time.sleep(max(0.0, in_flight[0][0] - now))
                        continue
                    data = src.recv(min(CHUNK, self.window - unacked))
                    if not data:
                        break
                    deliver = self._deliver_at(direction, len(data), time.monotonic()) + handshake
                    handshake = 0.0
                    in_flight.append((deliver + self.delay, len(data)))  # the ACK travels back
                    unacked += len(data)
                    chunks.put((deliver, data))
            except OSError:
                pass
            chunks.put(None)

        def write() -> None:
            item = chunks.get()
            try:
                while item is not None:
                    wait = item[0] - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    dst.sendall(item[1])
                    item = chunks.get()
                dst.shutdown(socket.SHUT_WR)
            except OSError:  # the peer went away: stop the reader too, then drain
                try:
                    src.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                while item is not None:
                    item = chunks.get()

        threading.Thread(target=read, daemon=True).start()
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        return writer
