"""Real processes for reliability tests: `usertrail serve` subprocesses and a throwaway
PostgreSQL cluster (initdb + pg_ctl in a temp dir, on a free port; never the shared server).
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.conftest import free_port

USERTRAIL = Path(sys.executable).with_name("usertrail")


class ServerProcess:
    """`usertrail serve --dev` in its own process group, logging to a file."""

    def __init__(self, database_url: str, log_dir: Path, *, workers: int = 1):
        self.database_url = database_url
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self) -> list[str]:
        program = [str(USERTRAIL)] if USERTRAIL.exists() else [sys.executable, "-m", "server.cli"]
        return [
            *program,
            "serve",
            "--dev",
            "--workers",
            str(self.workers),
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
        ]

    async def start(self, timeout: float = 60) -> ServerProcess:
        """Start the server (again, on the same port and database) and wait for /healthz."""
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log_path.open("ab") as log:
            log.write(f"--- start {time.strftime('%X')}\n".encode())
            self._log_offset = log.tell()
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: SIGKILL reaches the workers
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        await self.wait_healthy(timeout)
        return self

    async def wait_healthy(self, timeout: float = 60) -> None:
        """Wait until every worker has started and /healthz answers 200."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            while True:
                assert self.running, f"the server exited:\n{self.log_tail()}"
                late = time.monotonic() > deadline
                assert not late, f"not healthy in {timeout} s:\n{self.log_tail()}"
                if self._workers_started() >= self.workers:
                    try:
                        if (await client.get("/healthz")).status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                await asyncio.sleep(0.05)

    def _workers_started(self) -> int:
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().count(b"Application startup complete")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group: the machine lost power, as far as the server knows."""
        if self.running:
            os.killpg(self.pid, signal.SIGKILL)
            assert self.process is not None
            self.process.wait(10)

    def terminate(self) -> None:
        """SIGTERM, as a process manager stopping the server sends it."""
        if self.running:
            os.kill(self.pid, signal.SIGTERM)

    async def wait_exit(self, timeout: float = 30) -> int:
        """The exit status, once the server has exited."""
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while self.process.poll() is None:
            assert time.monotonic() < deadline, f"still running after {timeout} s"
            await asyncio.sleep(0.05)
        return self.process.returncode

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; reaps the process group either way."""
        if self.process is None:
            return
        self.terminate()
        try:
            await self.wait_exit(20)
        except AssertionError:
            pass
        try:
            os.killpg(self.pid, signal.SIGKILL)  # workers a dead parent left behind, if any
        except ProcessLookupError:
            pass
        self.process.wait(10)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def postgres_binaries() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl, or None."""
    found = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for directory in reversed(found):
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


class PostgresCluster:
    """A throwaway PostgreSQL cluster in a temp dir on a free loopback port.

    initdb refuses to run as root: as root, the binaries run as the `postgres` user.
    """

    def __init__(self, binaries: Path):
        self.binaries = binaries
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="usertrail-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.owner = _unprivileged_owner()
        if self.owner is not None:
            os.chown(self.base, self.owner.pw_uid, self.owner.pw_gid)
        self.base.chmod(0o755)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str, timeout: float = 60) -> None:
        command = [str(self.binaries / program), *args]
        if self.owner is not None:
            command = ["runuser", "-u", self.owner.pw_name, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}\n{log}")

    def init(self) -> PostgresCluster:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=50"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster: `fast` ends every session; `immediate` is a crash of the server."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass  # already stopped
        shutil.rmtree(self.base, ignore_errors=True)


def _unprivileged_owner() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return None


def can_run_postgres_cluster() -> str | None:
    """Why a throwaway cluster cannot run here, or None when it can."""
    if postgres_binaries() is None:
        return "no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
    if os.geteuid() == 0 and (_unprivileged_owner() is None or shutil.which("runuser") is None):
        return "running as root without a `postgres` user and runuser to run initdb as"
    return None
