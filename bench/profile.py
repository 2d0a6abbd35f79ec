"""`python -m bench.profile`: where an ingestion server spends its time, sampled by py-spy.

python -m bench.profile --route heap --database sqlite     # make profile ROUTE=heap DB=sqlite
python -m bench.profile --route segment --events 120000 --seconds 10 --top 20

Starts a real `usertrail serve` on a fresh migrated database, sends one warm-up batch, then the
demo events in batches of 500 from 4 clients (as `make bench` does, bench/ingestion.py) while
py-spy samples the server (idle threads too) and /proc gives its CPU time over the same window.
Prints the cores the server used, in all and per thread, the share of each thread's samples
that were not waits, and the functions the busiest threads spend their samples in.
"""

from __future__ import annotations

import argparse
import asyncio
import linecache
import os
import re
import shutil
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench.databases import DEFAULT_PG_URL, Databases
from bench.ingestion import (
    BATCH_SIZE,
    CONCURRENCY,
    ROUTES,
    _route_exists,
    _send,
    demo_events,
    request_bodies,
)
from bench.server import ServerProcess

ROUTE_NAMES = {"graphql": ROUTES[0], "heap": ROUTES[1], "segment": ROUTES[2]}
SEED = 1001  # the people `make bench` ingests
LEAD_SECONDS = 0.2  # sending runs this long before py-spy starts
MIN_WINDOW_SECONDS = 1.0  # the shortest sampling window, when sending ends early
RESULTS = Path(__file__).parent / "results"
NO_PYSPY, NO_SAMPLES = 2, 3  # exit statuses: py-spy missing; py-spy could not sample

# Leaves that are a thread waiting: (file, function without its class).
WAIT_LEAVES = {
    ("selectors.py", "select"),
    ("threading.py", "wait"),
    ("threading.py", "_wait_for_tstate_lock"),
    ("queue.py", "get"),
}
# Worker loops that block in a C-level queue read (no Python frame below): their leaf is a
# wait only on the line that reads the queue (`tx.get()`); elsewhere it is running C code.
QUEUE_LOOPS = {
    ("aiosqlite/core.py", "_connection_worker_thread"),
    ("concurrent/futures/thread.py", "_worker"),
}
# Frames every request passes through; left out of the inclusive tables (not the self ones).
PLUMBING = (
    "asyncio/",
    "uvicorn/",
    "starlette/",
    "anyio/",
    "concurrent/futures/",
    "threading.py",
    "selectors.py",
    "contextlib.py",
)
THREAD = re.compile(r"thread \((?P<id>[^)]*)\)(?:: (?P<name>.*))?")


# ---------------------------------------------------------------------- folded stacks


@dataclass(frozen=True, slots=True)
class Frame:
    """One py-spy frame, `function (file:line)`."""

    function: str
    file: str
    line: int | None

    @classmethod
    def parse(cls, text: str) -> Frame:
        """`Class.method (package/module.py:12)` as a Frame."""
        function, _, place = text.rpartition(" (")
        if not function:
            return cls(text, "", None)
        file, _, line = place.removesuffix(")").rpartition(":")
        if not line.isdigit():
            return cls(function, place.removesuffix(")"), None)
        return cls(function, file, int(line))

    def is_in(self, place: str) -> bool:
        """Whether this frame is in `place`: a file (`threading.py`) or a package (`asyncio/`)."""
        if place.endswith("/"):
            return self.file.startswith(place) or f"/{place}" in self.file
        return self.file == place or self.file.endswith(f"/{place}")

    @property
    def without_line(self) -> Frame:
        """This frame's function and file: what the tables count by."""
        return Frame(self.function, self.file, None)


NO_FRAME = Frame("(no Python frame)", "", None)  # a sample of a thread outside Python code


@dataclass(frozen=True, slots=True)
class Stack:
    """One line of py-spy's raw output: a thread's stack (root first) and its samples."""

    thread_id: int | None
    thread: str
    frames: tuple[Frame, ...]
    count: int


def parse_folded(lines: Iterable[str]) -> list[Stack]:
    """The stacks of py-spy `--format raw --threads` output."""
    stacks = []
    for line in lines:
        text, _, count = line.strip().rpartition(" ")
        if not text or not count.isdigit():
            continue
        parts = text.split(";")
        thread = THREAD.fullmatch(parts[0])
        if thread is None:
            stacks.append(Stack(None, "all threads", tuple(map(Frame.parse, parts)), int(count)))
            continue
        try:
            thread_id: int | None = int(thread["id"], 0)
        except ValueError:
            thread_id = None
        name = thread["name"] or f"thread {thread['id']}"
        stacks.append(Stack(thread_id, name, tuple(map(Frame.parse, parts[1:])), int(count)))
    return stacks


@lru_cache(maxsize=256)
def installed_source_line(file: str, line: int) -> str | None:
    """Line `line` of `file` as found on sys.path (py-spy names files relative to it)."""
    for directory in sys.path:
        candidate = Path(directory or ".") / file
        if candidate.is_file():
            return linecache.getline(str(candidate), line) or None
    return None


SourceLine = Callable[[str, int], str | None]


def is_wait(leaf: Frame, source_line: SourceLine = installed_source_line) -> bool:
    """Whether a stack ending in `leaf` is its thread waiting rather than working."""
    function = leaf.function.rpartition(".")[2]
    if any(leaf.is_in(file) and function == name for file, name in WAIT_LEAVES):
        return True
    if leaf.line is None or not any(leaf.is_in(f) and function == n for f, n in QUEUE_LOOPS):
        return False
    return ".get(" in (source_line(leaf.file, leaf.line) or "")


# -------------------------------------------------------------------------- summary


@dataclass(frozen=True, slots=True)
class ThreadSamples:
    """One thread's samples and how many of them were waits."""

    thread_id: int | None
    thread: str
    samples: int
    waits: int

    @property
    def busy(self) -> int:
        return self.samples - self.waits

    @property
    def busy_share(self) -> float:
        return self.busy / self.samples if self.samples else 0.0


@dataclass(frozen=True, slots=True)
class Hotspots:
    """The functions one kind of thread spends its busy samples in: inclusive and self."""

    role: str
    threads: int
    busy: int
    inclusive: list[tuple[Frame, int]]  # frames with line None: by function and file
    leaves: list[tuple[Frame, int]]


@dataclass(frozen=True, slots=True)
class Summary:
    """Per thread samples, and the hotspots of the busiest kinds of thread."""

    threads: list[ThreadSamples]
    hotspots: list[Hotspots]


def role(thread: str) -> str:
    """A thread's kind: its name without numbers (`Thread-3 (_connection_worker_thread)`)."""
    return re.sub(r"\d+", "N", thread)


def plumbing(frames: tuple[Frame, ...]) -> set[int]:
    """Indexes of the generic frames: the ones in PLUMBING and the entry point above them."""
    generic = {i for i, frame in enumerate(frames) if any(map(frame.is_in, PLUMBING))}
    return set(range(min(generic))) | generic if generic else set()


def summarise(
    stacks: list[Stack],
    *,
    top: int,
    roles: int = 3,
    source_line: SourceLine = installed_source_line,
) -> Summary:
    """Samples and waits per thread; top functions of the `roles` busiest kinds of thread
    (each with at least 5% of all busy samples), by function and file, over busy samples."""
    samples: Counter[tuple[int | None, str]] = Counter()
    waits: Counter[tuple[int | None, str]] = Counter()
    inclusive: defaultdict[str, Counter[Frame]] = defaultdict(Counter)
    leaves: defaultdict[str, Counter[Frame]] = defaultdict(Counter)
    for stack in stacks:
        thread = (stack.thread_id, stack.thread)
        samples[thread] += stack.count
        if stack.frames and is_wait(stack.frames[-1], source_line):
            waits[thread] += stack.count
            continue
        kind, generic = role(stack.thread), plumbing(stack.frames)
        for function in {f.without_line for i, f in enumerate(stack.frames) if i not in generic}:
            inclusive[kind][function] += stack.count
        leaves[kind][stack.frames[-1].without_line if stack.frames else NO_FRAME] += stack.count
    threads = sorted(
        (ThreadSamples(*thread, count, waits[thread]) for thread, count in samples.items()),
        key=lambda thread: (-thread.busy, thread.thread),
    )
    busy: Counter[str] = Counter()
    for each in threads:
        busy[role(each.thread)] += each.busy
    members = Counter(role(each.thread) for each in threads)
    hotspots = [
        Hotspots(
            kind,
            members[kind],
            busy[kind],
            inclusive[kind].most_common(top),
            leaves[kind].most_common(top),
        )
        for kind, _ in busy.most_common(roles)
        if busy[kind] >= max(1, 0.05 * busy.total())
    ]
    return Summary(threads, hotspots)


# ----------------------------------------------------------------------------- CPU


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """CPU seconds (user + system) of a process and of each of its threads, at `at`."""

    at: float
    process: float
    threads: dict[int, tuple[str, float]]  # thread id: (comm, seconds)


def stat_seconds(stat: str) -> float:
    """utime + stime of a /proc/…/stat line, in seconds."""
    fields = stat.rpartition(")")[2].split()  # after the command, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_cpu(pid: int) -> CpuTimes:
    """The CPU time of process `pid` and its threads now."""
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            threads[int(task.name)] = (comm, stat_seconds((task / "stat").read_text()))
        except OSError:  # the thread ended meanwhile
            continue
    process = stat_seconds(Path(f"/proc/{pid}/stat").read_text())
    return CpuTimes(time.monotonic(), process, threads)


def cores(before: CpuTimes, after: CpuTimes) -> tuple[float, dict[int, tuple[str, float]]]:
    """Cores used between two readings: by the process, and by each thread alive at the end."""
    wall = after.at - before.at
    threads = {
        tid: (comm, (seconds - before.threads.get(tid, (comm, 0.0))[1]) / wall)
        for tid, (comm, seconds) in after.threads.items()
    }
    return (after.process - before.process) / wall, threads


# ----------------------------------------------------------------------------- run


class ProfileError(Exception):
    """The profile could not be taken; `status` is the exit status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Recording:
    """What one profiled run measured."""

    events: int
    send_seconds: float
    window_seconds: float
    cut_short: bool
    before: CpuTimes
    after: CpuTimes


def py_spy() -> str:
    """The py-spy beside this interpreter, else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise ProfileError(
            "py-spy is not installed: pip install 'py-spy>=0.4' (make profile installs it)",
            NO_PYSPY,
        )
    return found


async def record(
    args: argparse.Namespace, database_url: str, log: Path, say: Callable[[str], None]
) -> Recording:
    """Send the events through the route while py-spy samples the server; the window ends
    early (but lasts MIN_WINDOW_SECONDS) when the sending does."""
    route = ROUTE_NAMES[args.route]
    items = demo_events(args.events + BATCH_SIZE, seed=SEED)
    run = f"profile-{time.time_ns()}"
    warmup = request_bodies(route, items[:BATCH_SIZE], BATCH_SIZE, run + "-w")
    bodies = request_bodies(route, items[BATCH_SIZE:], BATCH_SIZE, run)
    command = [py_spy(), "record", "--duration", str(args.seconds), "--rate", str(args.rate)]
    command += ["--format", "raw", "--threads", "--idle", "--nonblocking"]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    async with (
        ServerProcess(database_url, log) as server,
        httpx.AsyncClient(base_url=server.url, timeout=300) as client,
    ):
        assert server.process is not None
        pid = server.process.pid
        if not await _route_exists(client, route):
            raise ProfileError(f"{route.path} does not exist on this server")
        await _send(client, route, warmup, 1)
        started = time.monotonic()
        sending = asyncio.create_task(_send(client, route, bodies, CONCURRENCY))
        sent_at: list[float] = []
        sending.add_done_callback(lambda _: sent_at.append(time.monotonic()))
        await asyncio.sleep(LEAD_SECONDS)
        say(f"py-spy samples the server (pid {pid}) for up to {args.seconds} s")
        spy = await asyncio.create_subprocess_exec(
            *command, "--pid", str(pid), "--output", str(args.output),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        before = read_cpu(pid)
        spying = asyncio.create_task(spy.communicate())
        await asyncio.wait(
            {sending, spying}, timeout=args.seconds, return_when=asyncio.FIRST_COMPLETED
        )
        floor = before.at + min(MIN_WINDOW_SECONDS, args.seconds) - time.monotonic()
        if not spying.done() and floor > 0:
            await asyncio.wait({spying}, timeout=floor)  # py-spy must attach before a SIGINT
        after = read_cpu(pid)
        if not spying.done():
            spy.send_signal(signal.SIGINT)  # py-spy writes what it has sampled and stops
        _, errors = await spying
        if spy.returncode != 0:
            sending.cancel()
            with suppress(asyncio.CancelledError):
                await sending
            raise ProfileError(
                f"py-spy could not sample the server (pid {pid}): {errors.decode().strip()}\n"
                "it needs ptrace: run as the server's user with kernel.yama.ptrace_scope=0, "
                "or as root, or in a container with --cap-add SYS_PTRACE",
                NO_SAMPLES,
            )
        accepted = await sending
    return Recording(
        events=accepted,
        send_seconds=sent_at[0] - started,
        window_seconds=after.at - before.at,
        cut_short=sent_at[0] < before.at + args.seconds,
        before=before,
        after=after,
    )


async def profile(args: argparse.Namespace, say: Callable[[str], None]) -> Recording:
    """A fresh migrated database, then `record` against it."""
    databases = Databases(args.pg_url if args.database == "postgresql" else None)
    try:
        if args.database == "postgresql":
            problem = await databases.postgres_reachable()
            if problem:
                raise ProfileError(problem)
            url = await databases.postgresql("profile")
        else:
            url = await databases.sqlite("profile")
        say(f"{ROUTE_NAMES[args.route].name} on {args.database}: {args.events:,} events")
        return await record(args, url, databases.directory / "server.log", say)
    finally:
        await databases.close()


# -------------------------------------------------------------------------- report


def report(args: argparse.Namespace, recording: Recording, summary: Summary) -> list[Table | str]:
    """What to print: the run in a line, the thread table, the hotspot tables."""
    route, rate = ROUTE_NAMES[args.route], recording.events / recording.send_seconds
    process, per_thread = cores(recording.before, recording.after)
    lines: list[Table | str] = [
        f"{route.name} on {args.database}: {recording.events:,} events in "
        f"{recording.send_seconds:.1f} s = [bold]{rate:,.0f} events/s[/] ({CONCURRENCY} clients, "
        f"{BATCH_SIZE} per request); py-spy at {args.rate} Hz over "
        f"{recording.window_seconds:.1f} s, raw stacks in {args.output}"
    ]
    threads = Table(
        title=f"Server threads over the {recording.window_seconds:.1f} s window",
        caption="busy share: samples not in a wait; a thread waiting for the GIL (or a CPU) "
        "counts as busy, so busy share above CPU cores is time spent waiting for one",
    )
    for column in ("thread", "id", "CPU cores (/proc)", "samples", "waits", "busy share"):
        threads.add_column(column, justify="left" if column == "thread" else "right")
    for thread in summary.threads:
        _, used = per_thread.pop(thread.thread_id or 0, ("", None))
        threads.add_row(
            thread.thread,
            str(thread.thread_id or ""),
            f"{used:.2f}" if used is not None else "–",
            f"{thread.samples:,}",
            f"{thread.waits:,}",
            f"{thread.busy_share:.0%}",
        )
    for tid, (comm, used) in sorted(per_thread.items(), key=lambda item: -item[1][1]):
        if used >= 0.005:  # a thread py-spy did not see: not a Python one
            threads.add_row(f"({comm})", str(tid), f"{used:.2f}", "–", "–", "–")
    threads.add_row(f"[bold]whole process[/] ({os.cpu_count()} CPUs)", "", f"[bold]{process:.2f}")
    lines.append(threads)
    for spot in summary.hotspots:
        kind = spot.role + (f" ×{spot.threads}" if spot.threads > 1 else "")
        for measure, rows in (("inclusive", spot.inclusive), ("self", spot.leaves)):
            table = Table(
                title=f"{kind}: top {args.top} functions {measure}, of {spot.busy:,} busy"
            )
            table.add_column("function")
            table.add_column("file")
            table.add_column("samples", justify="right")
            table.add_column("share", justify="right")
            for frame, count in rows:
                table.add_row(frame.function, frame.file, f"{count:,}", f"{count / spot.busy:.0%}")
            lines.append(table)
    if recording.cut_short:
        enough = int(rate * (args.seconds + LEAD_SECONDS) * 1.25) // BATCH_SIZE * BATCH_SIZE
        lines.append(
            f"[yellow]warning:[/] the sending ended before the {args.seconds} s py-spy window "
            f"did, so the window was cut to {recording.window_seconds:.1f} s: pass --events "
            f"{enough} to fill it"
        )
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--route", choices=ROUTE_NAMES, default="heap", help="(heap)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--events", type=int, default=150_000, help="events sent (150,000)")
    parser.add_argument("--seconds", type=int, default=8, help="py-spy duration (8)")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples a second (100)")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"admin URL ({DEFAULT_PG_URL})")
    parser.add_argument("--output", type=Path, help="raw py-spy stacks (bench/results/…)")
    parser.add_argument("--top", type=int, default=15, help="functions per table (15)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Profile one route on one database and print the tables; 2 without py-spy."""
    args = _parser().parse_args(argv)
    args.output = args.output or RESULTS / f"profile-{args.route}-{args.database}.txt"
    console = Console(stderr=True)
    try:
        py_spy()
        recording = asyncio.run(profile(args, lambda text: console.print(text, highlight=False)))
    except ProfileError as error:
        console.print(f"[red]bench.profile:[/] {error}", highlight=False)
        return error.status
    with args.output.open() as raw:
        summary = summarise(parse_folded(raw), top=args.top)
    out = Console(width=None if sys.stdout.isatty() else 160)
    for item in report(args, recording, summary):
        out.print(item, highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
