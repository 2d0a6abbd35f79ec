"""The installed `usertrail` command, run as a user runs it: --version, --help, demo, serve."""

from __future__ import annotations

import importlib.metadata
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.demo_server import DemoServer

USERTRAIL = Path(sys.executable).with_name("usertrail")
CHOICES = re.compile(r"^  \{(?P<names>[a-z,-]+)\}$", re.MULTILINE)

pytestmark = pytest.mark.skipif(
    not USERTRAIL.exists(), reason=f"no installed `usertrail` script beside {sys.executable}"
)


def usertrail(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed entry point; a wide-enough, fixed terminal so help text wraps alike."""
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("USERTRAIL_DATABASE_URL", None)
    return subprocess.run(
        [str(USERTRAIL), *args], capture_output=True, text=True, timeout=300, env=env
    )


def events_in(path: Path, environment: str = "default") -> int:
    with sqlite3.connect(path) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM events JOIN environments ON environments.id = "
            "events.environment_id WHERE environments.name = ?",
            (environment,),
        ).fetchone()
    return int(count)


def test_version_names_the_installed_package() -> None:
    done = usertrail("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"usertrail {importlib.metadata.version('usertrail')}\n"


def _commands(help_text: str) -> list[str]:
    found = CHOICES.search(help_text)
    assert found, help_text
    return found["names"].split(",")


def _assert_one_line_help(help_text: str, names: list[str]) -> None:
    lines = help_text.splitlines()
    for name in names:
        [at] = [i for i, line in enumerate(lines) if re.match(rf"^    {re.escape(name)}  ", line)]
        assert re.match(rf"^    {re.escape(name)} +\S", lines[at]), f"{name} has no help"
        following = lines[at + 1]
        assert not re.match(r"^ {6,}\S", following), f"{name}'s help runs onto two lines"


def test_help_lists_every_command_with_a_one_line_summary() -> None:
    top = usertrail("--help")
    assert top.returncode == 0, top.stderr
    assert "--version" in top.stdout
    commands = _commands(top.stdout)
    assert {"serve", "demo", "migrate", "export-schema", "env", "key"} <= set(commands)
    _assert_one_line_help(top.stdout, commands)
    nested = 0
    for command in commands:
        done = usertrail(command, "--help")
        assert done.returncode == 0, done.stderr
        if CHOICES.search(done.stdout):  # env and key have commands of their own
            _assert_one_line_help(done.stdout, _commands(done.stdout))
            nested += 1
    assert nested >= 2


def test_demo_refuses_an_environment_that_holds_events_unless_appending(
    tmp_path: Path,
) -> None:
    path = tmp_path / "demo.db"
    url = f"sqlite+aiosqlite:///{path}"
    demo = ("demo", "--users", "12", "--days", "2", "--database-url", url)
    first = usertrail(*demo)
    assert first.returncode == 0, first.stderr
    assert "of 12 people into environment 'default'" in first.stdout
    loaded = events_in(path)
    assert loaded > 0

    again = usertrail(*demo)
    assert again.returncode != 0
    assert f"already holds {loaded:,} events" in again.stderr
    assert "--append" in again.stderr
    assert "Loaded" not in again.stdout
    assert events_in(path) == loaded

    other = usertrail(*demo, "--environment", "staging")  # the refusal is per environment
    assert other.returncode == 0, other.stderr
    assert events_in(path, "staging") == loaded

    appended = usertrail(*demo, "--append")
    assert appended.returncode == 0, appended.stderr
    assert events_in(path) == 2 * loaded


async def test_serve_loads_the_demo_only_into_an_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "serve.db"
    url = f"sqlite+aiosqlite:///{path}"
    empty = DemoServer(url, tmp_path / "empty", users=12, days=2)
    await empty.start(timeout=300)
    await empty.stop()
    log = empty.log_path.read_text()
    assert "Empty database: loading a demo data set (12 people over 2 days)" in log
    loaded = events_in(path)
    assert loaded > 0

    again = DemoServer(url, tmp_path / "again", users=12, days=2)
    await again.start(timeout=300)
    await again.stop()
    assert "Empty database" not in again.log_path.read_text()
    assert events_in(path) == loaded
