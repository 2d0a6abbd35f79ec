"""`usertrail serve --dev --demo-if-empty N --demo-days D`: the server `make serve` starts."""

from __future__ import annotations

import re
from pathlib import Path

from tests.reliability.processes import ServerProcess

MAKEFILE = Path(__file__).resolve().parents[1] / "Makefile"


def makefile_demo() -> tuple[int, int]:
    """The Makefile's DEMO and DEMO_DAYS: the people and days `make serve` loads."""
    text = MAKEFILE.read_text()

    def value(name: str) -> int:
        found = re.search(rf"^{name} \?= (\d+)$", text, re.MULTILINE)
        assert found, f"no `{name} ?= <number>` in {MAKEFILE}"
        return int(found[1])

    return value("DEMO"), value("DEMO_DAYS")


class DemoServer(ServerProcess):
    """A dev-mode `usertrail serve` that loads a demo data set into an empty database first."""

    def __init__(self, database_url: str, log_dir: Path, *, users: int, days: int):
        log_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(database_url, log_dir)
        self.users, self.days = users, days

    def command(self) -> list[str]:
        demo = ["--demo-if-empty", str(self.users), "--demo-days", str(self.days)]
        return [*super().command(), *demo]
