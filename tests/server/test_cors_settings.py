"""CORS settings: origins as browsers send them, start-up refusals, flags reaching workers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from server import cli, cross_origin
from server.app import create_app
from server.settings import SettingError, Settings, parse_origins
from tests.conftest import free_port
from tests.reliability.processes import USERTRAIL
from tests.server.test_cors import APP, SHOP, assert_refused_preflight, preflight


async def test_dev_mode_refuses_configured_origins_that_are_not_loopback(database_url: str) -> None:
    with pytest.raises(SettingError, match="dev mode"):
        create_app(Settings(database_url=database_url, dev=True, cors_origins=(APP,)))
    with pytest.raises(SettingError, match=r"\*"):
        create_app(Settings(database_url=database_url, dev=True, cors_ingest_origins=("*",)))
    # Loopback origins may be listed (they are allowed anyway), and ingestion's default `*`
    # does not apply in dev mode.
    settings = Settings(
        database_url=database_url, dev=True, cors_origins=("http://localhost:5173",)
    )
    assert cross_origin.allowed_origins(settings) == ((), ())


def test_serve_refuses_bad_cors_settings_before_starting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("USERTRAIL_CORS_ORIGINS", raising=False)
    assert cli.main(["serve", "--dev", "--cors-origins", APP]) == 2
    assert "dev mode" in capsys.readouterr().err
    assert cli.main(["serve", "--cors-origins", "https://app.example.com/"]) == 2
    assert "not an origin" in capsys.readouterr().err
    monkeypatch.setenv("USERTRAIL_CORS_ORIGINS", "app.example.com")
    assert cli.main(["migrate"]) == 2
    assert "USERTRAIL_CORS_ORIGINS" in capsys.readouterr().err


def test_origins_are_written_as_browsers_send_them() -> None:
    assert parse_origins(" https://App.Example.com:443, http://localhost:5173 ,, *", "X") == (
        APP,
        "http://localhost:5173",
        "*",
    )
    assert parse_origins("", "X") == ()
    for wrong in ("https://app.example.com/", "app.example.com", "ftp://a.b", "https://a.b:0"):
        with pytest.raises(SettingError, match="X"):
            parse_origins(wrong, "X")


def test_settings_from_env_and_back() -> None:
    settings = Settings.from_env(
        {"USERTRAIL_CORS_ORIGINS": f"{APP},{SHOP}", "USERTRAIL_CORS_INGEST_ORIGINS": ""}
    )
    assert settings.cors_origins == (APP, SHOP) and settings.cors_ingest_origins == ()
    assert Settings.from_env(settings.as_env()) == settings
    default = Settings.from_env({})
    assert default.cors_origins == () and default.cors_ingest_origins is None
    assert Settings.from_env(default.as_env()) == default
    assert cross_origin.allowed_origins(default) == ((), ("*",))


async def test_usertrail_serve_hands_the_flags_to_its_workers(
    database_url: str, tmp_path: Path
) -> None:
    """`usertrail serve --cors-origins` with two worker processes, each built from the env."""
    port = free_port()
    program = [str(USERTRAIL)] if USERTRAIL.exists() else [sys.executable, "-m", "server.cli"]
    command = [
        *program,
        "serve",
        "--workers",
        "2",
        "--port",
        str(port),
        "--database-url",
        database_url,
        "--cors-origins",
        APP,
        "--cors-ingest-origins",
        "",
    ]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("USERTRAIL_")}
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=environ, start_new_session=True
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(600):
                assert process.poll() is None, log_path.read_text()
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            for _ in range(6):  # whichever worker answers
                asked = preflight(APP, headers="content-type")
                app = await http.options("/v1/batch", headers=asked)
                assert app.headers["access-control-allow-origin"] == APP
                shop = await http.options("/v1/batch", headers=preflight(SHOP))
                assert_refused_preflight(shop)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
