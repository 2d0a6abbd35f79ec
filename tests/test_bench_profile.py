"""`python -m bench.profile`: its reading of py-spy's folded stacks, and one real run.

The real run needs py-spy and the right to ptrace the server; without either it skips.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import profile
from bench.profile import CpuTimes, Frame, cores, is_wait, parse_folded, stat_seconds, summarise

ROOT = Path(__file__).parent.parent
LOOP = (
    "<module> (usertrail:6);main (server/cli.py:129);run (uvicorn/main.py:632);"
    "BaseEventLoop.run_forever (asyncio/base_events.py:607)"
)
REQUEST = (
    f"{LOOP};Handle._run (asyncio/events.py:80);Starlette.__call__ (starlette/applications.py:96)"
    ";track (server/heap_api.py:40)"
)
WORKER = "Thread._bootstrap (threading.py:1002);Thread.run (threading.py:982)"
FOLDED = f"""\
thread (101): MainThread;{LOOP};EpollSelector.select (selectors.py:468) 50
thread (101): MainThread;{REQUEST};_bulk (server/heap_api.py:80);_validate (services/ingest.py:200) 20
thread (101): MainThread;{REQUEST};_bulk (server/heap_api.py:81) 10
thread (101): MainThread;{REQUEST};_bulk (server/heap_api.py:90);_validate (services/ingest.py:210);_validate (services/ingest.py:200) 5
thread (101): MainThread 2
thread (102): Thread-2 (_connection_worker_thread);{WORKER};_connection_worker_thread (aiosqlite/core.py:59) 70
thread (102): Thread-2 (_connection_worker_thread);{WORKER};_connection_worker_thread (aiosqlite/core.py:63) 30
thread (103): asyncio_0;{WORKER};_worker (concurrent/futures/thread.py:81) 99
thread (103): asyncio_0;{WORKER};_worker (concurrent/futures/thread.py:83);Checkpointer._checkpoint (models/db.py:296) 1
thread (104): Thread-3;{WORKER};Event.wait (threading.py:629);Condition.wait (threading.py:327) 100
"""  # noqa: E501 - py-spy's lines are long
SOURCE = {
    ("aiosqlite/core.py", 59): "        future, function = tx.get()\n",
    ("aiosqlite/core.py", 63): "            result = function()\n",
    ("concurrent/futures/thread.py", 81): "            work_item = work_queue.get(block=True)\n",
}


def canned_source(file: str, line: int) -> str | None:
    return SOURCE.get((file, line))


def summary(top: int = 10) -> profile.Summary:
    return summarise(parse_folded(FOLDED.splitlines()), top=top, source_line=canned_source)


def test_a_folded_line_is_its_thread_its_frames_and_its_count() -> None:
    first, *_, bare = parse_folded(FOLDED.splitlines()[:5])
    assert (first.thread_id, first.thread, first.count) == (101, "MainThread", 50)
    assert first.frames[0] == Frame("<module>", "usertrail", 6)
    assert first.frames[-1] == Frame("EpollSelector.select", "selectors.py", 468)
    assert (bare.thread, bare.frames, bare.count) == ("MainThread", (), 2)
    (unnamed,) = parse_folded(["thread (9394);<module> (<string>:4) 214", "", "garbage"])
    assert (unnamed.thread_id, unnamed.thread) == (9394, "thread 9394")


def test_waits_are_the_event_loop_the_thread_waits_and_the_queue_reads() -> None:
    threads = {thread.thread: thread for thread in summary().threads}
    main = threads["MainThread"]
    assert (main.samples, main.waits, main.busy) == (87, 50, 37)
    sqlite = threads["Thread-2 (_connection_worker_thread)"]
    assert (sqlite.waits, sqlite.busy) == (70, 30)  # `function()` is SQLite at work, not a wait
    assert (threads["asyncio_0"].waits, threads["Thread-3"].waits) == (99, 100)
    assert main.busy_share == pytest.approx(37 / 87)
    assert [thread.thread for thread in summary().threads][:2] == [
        "MainThread",
        "Thread-2 (_connection_worker_thread)",
    ]  # the busiest first


def test_the_queue_reads_are_found_in_the_installed_code() -> None:
    for module, call in (
        ("aiosqlite/core.py", "tx.get()"),
        ("concurrent/futures/thread.py", "work_queue.get("),
    ):
        path = next(p for d in sys.path if (p := Path(d or ".") / module).is_file())
        lines = path.read_text().splitlines()
        line = next(number for number, text in enumerate(lines, 1) if call in text)
        function = "_connection_worker_thread" if module.startswith("aiosqlite") else "_worker"
        assert is_wait(Frame(function, module, line))
        assert not is_wait(Frame(function, module, line + 4))


def test_inclusive_counts_each_function_once_per_stack_without_the_plumbing() -> None:
    main, sqlite = summary().hotspots  # asyncio_N has less than 5% of the busy samples
    assert (main.role, main.threads, main.busy) == ("MainThread", 1, 37)
    inclusive = {(frame.function, frame.file): count for frame, count in main.inclusive}
    assert inclusive == {
        ("track", "server/heap_api.py"): 35,
        ("_bulk", "server/heap_api.py"): 35,  # three lines, one function
        ("_validate", "services/ingest.py"): 25,  # recursion counted once per stack
    }  # no asyncio, uvicorn, starlette frames, nor the entry point above them
    leaves = {(frame.function, frame.file): count for frame, count in main.leaves}
    assert leaves == {
        ("_validate", "services/ingest.py"): 25,
        ("_bulk", "server/heap_api.py"): 10,
        ("(no Python frame)", ""): 2,
    }
    assert sqlite.role == "Thread-N (_connection_worker_thread)"
    assert [(frame.function, count) for frame, count in sqlite.leaves] == [
        ("_connection_worker_thread", 30)
    ]
    assert len(summary(top=1).hotspots[0].inclusive) == 1


def test_cores_are_cpu_seconds_over_wall_seconds() -> None:
    stat = "77 (usertrail (odd)) S 1 77 77 0 -1 4194560 9 0 0 0 250 50 0 0 20 0 5 0"
    assert stat_seconds(stat) == pytest.approx(300 / profile.os.sysconf("SC_CLK_TCK"))
    before = CpuTimes(10.0, 1.0, {77: ("usertrail", 0.5), 78: ("usertrail", 0.5)})
    after = CpuTimes(12.0, 3.0, {77: ("usertrail", 2.0), 79: ("usertrail", 0.25)})
    process, threads = cores(before, after)
    assert process == pytest.approx(1.0)
    assert threads == {77: ("usertrail", 0.75), 79: ("usertrail", 0.125)}


def test_without_py_spy_it_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert profile.main(["--route", "heap"]) == profile.NO_PYSPY
    assert "pip install 'py-spy>=0.4'" in capsys.readouterr().err


def test_a_real_run_prints_the_tables(tmp_path: Path) -> None:
    try:
        profile.py_spy()
    except profile.ProfileError:
        pytest.skip("py-spy is not installed (make profile installs it)")
    output = tmp_path / "profile.txt"
    command = [sys.executable, "-m", "bench.profile", "--route", "heap", "--database", "sqlite"]
    command += ["--events", "3000", "--seconds", "2", "--output", str(output)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    if done.returncode == profile.NO_SAMPLES:
        pytest.skip(f"py-spy cannot attach here: {done.stderr.strip()[-500:]}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Server threads over the" in done.stdout and "whole process" in done.stdout
    assert re.search(r"3,000 events in [\d.]+ s = [\d,]+ events/s", done.stdout)
    assert "MainThread" in done.stdout and output.stat().st_size > 0
