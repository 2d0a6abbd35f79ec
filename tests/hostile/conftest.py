"""The hostile suite's default target: a keyed production server (tests/hostile/probing.py).

Files that need a differently loaded server define their own `shop` fixture, which pytest
uses in their place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.hostile.probing import Shop, open_shop


@pytest.fixture
async def shop(database_url: str) -> AsyncIterator[Shop]:
    """A production server (keys, no dev mode) with its defaults."""
    async with open_shop(database_url) as opened:
        yield opened
