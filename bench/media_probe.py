"""What bench/media_upload.py measures with: a server's CPU and resident memory from
/proc, a raw-socket HTTP client that sends a big body without copying it, and a cProfile
summed by package."""

from __future__ import annotations

import os
import pstats
import socket
import threading
from pathlib import Path

HOST = "127.0.0.1"
SAMPLE_SECONDS = 0.005
REQUEST_TIMEOUT = 300.0


# --- /proc --------------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _cpu_seconds(stat_path: str) -> float:
    stat = Path(stat_path).read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def process_cpu(pid: int) -> float:
    """User + system CPU of the whole process (every thread), in seconds."""
    return _cpu_seconds(f"/proc/{pid}/stat")


def main_thread_cpu(pid: int) -> float:
    """CPU of the process's main thread: the event loop (the rest is worker threads)."""
    return _cpu_seconds(f"/proc/{pid}/task/{pid}/stat")


def server_pids(root: int) -> list[int]:
    """The process and its children (uvicorn's workers when --workers > 1)."""
    found = [root]
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == root:
                found.append(int(entry.name))
    return found


class RssSampler:
    """Peak VmRSS of some processes (summed) sampled every few milliseconds, and the
    kernel's own high-water mark (VmHWM, reset at the start through clear_refs)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.hwm_reset = True
        for pid in pids:
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                self.hwm_reset = False
        self.before_kib = self._rss()
        self.peak_kib = self.before_kib
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        return sum(_status_kib(pid, "VmRSS") for pid in self.pids)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.peak_kib = max(self.peak_kib, self._rss())
            self.samples += 1

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, self._rss())
        if self.hwm_reset:
            self.peak_kib = max(self.peak_kib, sum(_status_kib(p, "VmHWM") for p in self.pids))


# --- HTTP over a raw socket -------------------------------------------------------------------


class Client:
    """A keep-alive HTTP/1.1 connection: headers, then the body's pieces by `sendall`
    (no copy of a 50 MiB body per request), then the response read by Content-Length."""

    def __init__(self, port: int, timeout: float = REQUEST_TIMEOUT) -> None:
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buffer = b""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.buffer = b""

    def _connect(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection((HOST, self.port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.sock

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: tuple[bytes, ...] = (),
    ) -> tuple[int, dict[str, str], bytes]:
        sock = self._connect()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {sum(len(piece) for piece in body)}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for piece in body:
            sock.sendall(piece)
        return self._response()

    def _read_more(self) -> None:
        assert self.sock is not None
        data = self.sock.recv(65536)
        if not data:
            self.close()
            raise ConnectionError("the server closed the connection")
        self.buffer += data

    def _response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._read_more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.lower() == "set-cookie":
                cookies.append(value.strip())
            headers[name.lower()] = value.strip()
        if cookies:
            headers["set-cookie"] = "\n".join(cookies)
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._read_more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body


def _package(filename: str) -> str:
    """`fastapi`, `townsquare.media`, `asyncio`... for a profiled function's file."""
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if "townsquare" in parts:
        rest = parts[parts.index("townsquare") :]
        return ".".join(rest[:2]).removesuffix(".py")
    if "python3.11" in parts or filename.startswith("<"):
        tail = parts[parts.index("python3.11") + 1 :] if "python3.11" in parts else parts
        return "stdlib " + (tail[0].removesuffix(".py") if tail else filename)
    return filename


def by_package(stats: pstats.Stats) -> dict[str, float]:
    """Own CPU time per package; a built-in's time goes to the package that called it."""
    found: dict[str, float] = {}
    for (filename, _, _), row in stats.stats.items():  # type: ignore[attr-defined]
        own, callers = row[2], row[4]
        if filename != "~":
            key = _package(filename)
            found[key] = found.get(key, 0.0) + own
            continue
        for (caller_file, _, _), caller_row in callers.items():
            key = _package(caller_file) if caller_file != "~" else "built-ins"
            found[key] = found.get(key, 0.0) + caller_row[2]
    return found
