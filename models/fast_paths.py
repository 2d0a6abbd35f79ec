"""USERTRAIL_FAST_PATHS, read in one place for server/settings.py and models/db.py."""

from __future__ import annotations

import os
from collections.abc import Mapping

FALSE_WORDS = ("0", "false", "no", "off")


def fast_paths_from(environ: Mapping[str, str] | None = None) -> bool:
    """USERTRAIL_FAST_PATHS: on unless it is one of FALSE_WORDS."""
    env = os.environ if environ is None else environ
    return env.get("USERTRAIL_FAST_PATHS", "1").strip().lower() not in FALSE_WORDS
