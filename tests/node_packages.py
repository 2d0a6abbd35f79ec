"""npm packages the tests drive (clients, audits, axe-core), each folder with its own lock.

A folder's packages are installed with `npm ci` on first use into its node_modules (which git
ignores), and again when an installed version differs from the lock. Without node or npm, or
when npm cannot install them, the test is skipped and says why; with the CI environment
variable set it fails instead, so that CI never passes without running it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
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


def install(folder: Path, *packages: str, what: str) -> str:
    """The node executable, after `npm ci` in `folder` if `packages` are not as locked."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        cannot_run(what, f"node and npm are not on PATH ({', '.join(packages)} from npm)")
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
