"""The abusive client's raw-socket attacks for the abuse soak (bench/soak/soak.py): many open
connections and slow request bodies. Standard library only; loopback only.

Both run in a thread of their own until a deadline, keep their counts in a `stats` dict, and
never send anything but to the gateway's loopback address and port they are given.
"""

from __future__ import annotations

import errno
import resource
import select
import socket
import statistics
import threading
import time


def raise_fd_limit(wanted: int = 8192) -> int:
    """Raises this process's open-file limit towards `wanted` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _connect(source: str, host: str, port: int, timeout: float = 5.0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect((host, port))
        s.setblocking(False)
        return s
    except OSError:
        s.close()
        raise


def _readable(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
    """The sockets with something to read (data, EOF or an error); poll(), not select(): file
    descriptors may be past FD_SETSIZE."""
    if not socks:
        return []
    poller = select.poll()
    by_fd = {}
    for s in socks:
        by_fd[s.fileno()] = s
        poller.register(s, select.POLLIN | select.POLLERR | select.POLLHUP)
    return [by_fd[fd] for fd, _ in poller.poll(max(0.0, timeout) * 1000.0)]


def _closed_by_peer(s: socket.socket) -> bool:
    """True when the peer closed (EOF or reset); False when nothing is to be read."""
    try:
        data = s.recv(65536)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return data == b""


class ConnectionHolder(threading.Thread):
    """Opens `target` idle connections from `source` and keeps that many open until `deadline`:
    whatever the server closes is opened again (at most `max_opens_per_second`). A connection the
    server closes within `refused_within` seconds of the connect, without a request sent on it, is
    counted as refused at once (the gateway's connection caps close one too many at once)."""

    def __init__(self, source: str, host: str, port: int, target: int, deadline: float,
                 max_opens_per_second: int = 200, refused_within: float = 1.0):
        super().__init__(name="soak-connections", daemon=True)
        self.source, self.host, self.port = source, host, port
        self.target = target
        self.deadline = deadline
        self.max_opens_per_second = max_opens_per_second
        self.refused_within = refused_within
        self.stats = {"source": source, "target": target, "opened": 0, "refused_at_once": 0,
                      "closed_later": 0, "connect_errors": 0, "max_held": 0,
                      "held_samples": [], "held_at_end": 0}
        self._open: dict[socket.socket, float] = {}

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.stats["held_at_end"] = len(self._open)
            for s in self._open:
                s.close()
            self._open.clear()

    def _run(self) -> None:
        while time.monotonic() < self.deadline:
            tick = time.monotonic()
            budget = self.max_opens_per_second // 4
            while len(self._open) < self.target and budget > 0:
                budget -= 1
                try:
                    s = _connect(self.source, self.host, self.port)
                except OSError:
                    self.stats["connect_errors"] += 1
                    continue
                self._open[s] = time.monotonic()
                self.stats["opened"] += 1
            # Let the server decide on the new ones, then see which it closed.
            time.sleep(0.25)
            readable = _readable(list(self._open), 0)
            now = time.monotonic()
            for s in readable:
                if _closed_by_peer(s):
                    lived = now - self._open.pop(s)
                    s.close()
                    at_once = lived <= self.refused_within + 0.3
                    self.stats["refused_at_once" if at_once else "closed_later"] += 1
            held = len(self._open)
            self.stats["max_held"] = max(self.stats["max_held"], held)
            self.stats["held_samples"].append(held)
            rest = 0.25 - (time.monotonic() - tick - 0.25)
            if rest > 0:
                time.sleep(min(rest, max(0.0, self.deadline - time.monotonic())))


class SlowBodies(threading.Thread):
    """Keeps `count` uploads from `source` whose bodies drip at `bytes_per_second` (far below the
    gateway's BODY_MIN_RATE): each sends a complete header announcing `body_bytes`, then a few
    bytes a second. What the server does with each (closes it, answers it) is recorded; a closed
    one is started again until `deadline`."""

    def __init__(self, source: str, host: str, port: int, key: str, count: int, deadline: float,
                 body_bytes: int = 2_000_000, bytes_per_second: int = 64):
        super().__init__(name="soak-slow-bodies", daemon=True)
        self.source, self.host, self.port, self.key = source, host, port, key
        self.count = count
        self.deadline = deadline
        self.body_bytes = body_bytes
        self.bytes_per_second = bytes_per_second
        self.cut_after: list[float] = []
        self.stats = {"source": source, "count": count, "bytes_per_second": bytes_per_second,
                      "started": 0, "cut": 0, "answered": {}, "connect_errors": 0,
                      "refused_at_connect": 0, "open_at_end": 0, "body_bytes_sent": 0}
        self._socks: dict[socket.socket, dict] = {}

    def _start_one(self) -> None:
        try:
            s = _connect(self.source, self.host, self.port)
        except OSError:
            self.stats["connect_errors"] += 1
            return
        header = (f"POST /api/images HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                  f"Authorization: Bearer {self.key}\r\nContent-Type: image/jpeg\r\n"
                  f"X-Filename: slow.jpg\r\nContent-Length: {self.body_bytes}\r\n\r\n").encode()
        try:
            s.setblocking(True)
            s.settimeout(2)
            s.sendall(header)
            s.setblocking(False)
        except OSError:
            s.close()
            self.stats["refused_at_connect"] += 1
            return
        self._socks[s] = {"at": time.monotonic(), "sent": 0, "reply": b""}
        self.stats["started"] += 1

    def _finish(self, s: socket.socket, state: dict, reply: bytes | None) -> None:
        lived = time.monotonic() - state["at"]
        self._socks.pop(s, None)
        s.close()
        text = state["reply"] + (reply or b"")
        if text.startswith(b"HTTP/"):
            status = text.split(b" ", 2)[1].decode(errors="replace")
            self.stats["answered"][status] = self.stats["answered"].get(status, 0) + 1
        elif lived < 1.0 and state["sent"] == 0:
            self.stats["refused_at_connect"] += 1
        else:
            self.stats["cut"] += 1
            self.cut_after.append(lived)

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.stats["open_at_end"] = len(self._socks)
            for s in list(self._socks):
                s.close()
            self._socks.clear()
            if self.cut_after:
                self.stats["cut_after_s"] = {
                    "min": round(min(self.cut_after), 2),
                    "median": round(statistics.median(self.cut_after), 2),
                    "max": round(max(self.cut_after), 2)}

    def _run(self) -> None:
        chunk = b"\xff" * self.bytes_per_second
        while time.monotonic() < self.deadline:
            tick = time.monotonic()
            while len(self._socks) < self.count and time.monotonic() < self.deadline:
                before = len(self._socks)
                self._start_one()
                if len(self._socks) == before:
                    break  # refused: try again on the next tick
            for s, state in list(self._socks.items()):
                if state["sent"] + len(chunk) > self.body_bytes:
                    continue  # never finish the body
                try:
                    n = s.send(chunk)
                    state["sent"] += n
                    self.stats["body_bytes_sent"] += n
                except BlockingIOError:
                    pass
                except OSError as e:
                    if e.errno not in (errno.EPIPE, errno.ECONNRESET):
                        raise
                    self._finish(s, state, None)
            # Wait out the second, noticing whatever the server closes or answers meanwhile.
            while time.monotonic() < min(tick + 1.0, self.deadline):
                socks = list(self._socks)
                if not socks:
                    time.sleep(min(0.05, max(0.0, self.deadline - time.monotonic())))
                    continue
                left = min(tick + 1.0, self.deadline) - time.monotonic()
                readable = _readable(socks, left)
                for s in readable:
                    state = self._socks.get(s)
                    if state is None:
                        continue
                    try:
                        data = s.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if data:
                        state["reply"] += data
                        continue
                    self._finish(s, state, None)
