"""``nutcracker console``: the browser console (Streamlit) as a client of a running control API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.console import Console

from nutcracker.cli._common import check_options
from nutcracker.errors import EXIT_CONFIG
from nutcracker.ranges import PORT

API_ENV = "NUTCRACKER_CONSOLE_API"  # console.session reads it (the CLI must not import Streamlit)


def streamlit_argv(api: str, host: str, port: int) -> list[str]:
    """The Streamlit command line with the console's secure defaults."""
    script = Path(__file__).resolve().parents[1] / "console" / "app.py"
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.enableXsrfProtection",
        "true",
        "--server.enableCORS",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.maxUploadSize",
        "20",
        "--client.toolbarMode",
        "minimal",
        "--client.showErrorDetails",
        "none",
        "--theme.base",
        "dark",
        "--theme.primaryColor",
        "#e11d48",
    ]


def open_console(
    api: Annotated[
        str, typer.Option(help="The control API's URL (`nutcracker serve`).")
    ] = "http://127.0.0.1:8080",
    port: Annotated[int, typer.Option(help="The console's TCP port.")] = 8501,
    host: Annotated[str, typer.Option(help="Address the console listens on.")] = "127.0.0.1",
) -> None:
    """Open the browser console on a running control API (log in with your user and TOTP code)."""
    check_options(("--port", port, PORT))
    err = Console(stderr=True)
    parts = urlsplit(api)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        err.print(
            f"✗ --api must be a URL like http://127.0.0.1:8080, not {api!r}", markup=False, highlight=False
        )
        raise typer.Exit(code=EXIT_CONFIG)
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        err.print(
            f"✗ --api {api} sends passwords and tokens in clear text to another machine: use https://",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=EXIT_CONFIG)
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(
            f"✗ --host {host}: the console serves plain HTTP; keep it on 127.0.0.1 behind a TLS proxy",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=EXIT_CONFIG)
    Console().print(
        f"console on http://{host}:{port} for the API at {api}", markup=False, highlight=False, soft_wrap=True
    )
    env = {**os.environ, API_ENV: api.rstrip("/")}
    try:
        code = subprocess.call(streamlit_argv(api, host, port), env=env)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code=code)
