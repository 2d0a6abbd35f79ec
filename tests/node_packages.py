"""npm packages the tests drive (clients, audits, axe-core), each folder with its own lock.

A folder's packages are installed with `npm ci` on first use into its node_modules (which git
ignores), and again when an installed version differs from the lock. Without node or npm, or
when npm cannot install them, the test is skipped and says why; with the CI environment
variable set it fails instead, so that CI never passes without running it.

Two test runs may share a checkout (CI runs the suite on SQLite and on PostgreSQL at once):
`in_use` makes them take turns at a folder, for its install and for what a test writes there.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

NPM_CI = ("ci", "--no-audit", "--no-fund", "--loglevel=error")
NPM_SECONDS = 300


def cannot_run(what: str, reason: str) -> NoReturn:
    """Skip `what` (e.g. "the Relay client tests"), saying why; fail instead in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} must run in CI but cannot: {reason}")
    pytest.skip(f"{what} skipped: {reason}")


def installed(folder: Path, *packages: str) -> bool:
    """True when each package is installed in `folder` at the version its lock pins."""
    lock = json.loads((folder / "package-lock.json").read_text())["packages"]
    for name in packages:
        found = folder / "node_modules" / name / "package.json"
        if not found.exists():
            return False
        if json.loads(found.read_text())["version"] != lock[f"node_modules/{name}"]["version"]:
            return False
    return True


@contextmanager
def in_use(folder: Path) -> Iterator[None]:
    """`folder` held by this process (an exclusive lock file in it) until the block ends."""
    with open(folder / ".in-use.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install(folder: Path, *packages: str, what: str) -> str:
    """The node executable, after `npm ci` in `folder` if `packages` are not as locked."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        cannot_run(what, f"node and npm are not on PATH ({', '.join(packages)} from npm)")
    with in_use(folder):
        return _installed_node(folder, node, npm, packages, what)


def _installed_node(folder: Path, node: str, npm: str, packages: tuple[str, ...], what: str) -> str:
    if installed(folder, *packages):
        return node
    try:
        done = subprocess.run(
            [npm, *NPM_CI], cwd=folder, capture_output=True, text=True, timeout=NPM_SECONDS
        )
    except subprocess.TimeoutExpired:
        cannot_run(what, f"npm ci did not finish within {NPM_SECONDS} s in {folder}")
    if done.returncode != 0 or not installed(folder, *packages):
        cannot_run(what, f"npm ci failed in {folder}: {done.stderr.strip()[-1000:]}")
    return node
