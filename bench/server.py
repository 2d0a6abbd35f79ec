"""A real `usertrail serve --dev` subprocess on a free loopback port, and its peak memory."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx


def free_port() -> int:
    """A TCP port nobody listens on at 127.0.0.1 (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def usertrail_command() -> list[str]:
    """The installed `usertrail` script beside this interpreter, else `python -m server.cli`."""
    script = Path(sys.executable).with_name("usertrail")
    return [str(script)] if script.exists() else [sys.executable, "-m", "server.cli"]


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (the peak resident set size) of a live process, in MB; None if unreadable."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


class ServedProcess:
    """A subprocess serving HTTP on a free loopback port, for an `async with` block.

    Subclasses give the command line (`command`), the readiness probe (`ready`) and how to
    stop it (`stop_signal`); this class starts it, waits for the probe and stops it.
    """

    name = "process"
    stop_signal = signal.SIGTERM

    def __init__(self, database_url: str, log_path: Path, *, start_timeout: float = 90):
        self.database_url = database_url
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        return None

    async def ready(self, client: httpx.AsyncClient) -> bool:
        raise NotImplementedError

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.environment()
            )
        deadline = time.monotonic() + self.start_timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.process.returncode}; see {self.log_path}"
                    )
                try:
                    if await self.ready(client):
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer within {self.start_timeout} s")

    @property
    def peak_rss_mb(self) -> float | None:
        """The process's peak RSS so far, in MB."""
        return peak_rss_mb(self.process.pid) if self.process else None

    async def __aenter__(self) -> ServedProcess:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(self.stop_signal)
        try:
            await asyncio.to_thread(self.process.wait, 20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)


class ServerProcess(ServedProcess):
    """`async with ServerProcess(url, log) as server:` serves `server.url` until the block ends."""

    name = "usertrail serve"
    stop_signal = signal.SIGINT  # uvicorn shuts down gracefully on SIGINT

    def command(self) -> list[str]:
        return [
            *usertrail_command(),
            "serve",
            "--dev",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
        ]

    def environment(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("USERTRAIL_")}

    async def ready(self, client: httpx.AsyncClient) -> bool:
        return (await client.get("/healthz")).status_code == 200
