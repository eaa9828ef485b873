"""``nutcracker console`` starts Streamlit with the secure defaults, and hands the API URL over."""

from __future__ import annotations

from nutcracker.cli import console as console_cli
from nutcracker.console import session


def _options(argv: list[str]) -> dict[str, str]:
    flags = argv[argv.index("run") + 2 :]
    return dict(zip(flags[::2], flags[1::2], strict=True))


def test_streamlit_runs_the_console_on_loopback_with_xsrf_and_no_statistics() -> None:
    argv = console_cli.streamlit_argv("http://127.0.0.1:8080", "127.0.0.1", 8501)
    assert argv[argv.index("run") + 1].endswith("nutcracker/console/app.py")
    options = _options(argv)
    assert options["--server.address"] == "127.0.0.1"
    assert options["--server.port"] == "8501"
    assert options["--server.headless"] == "true"
    assert options["--server.enableXsrfProtection"] == "true"
    assert options["--browser.gatherUsageStats"] == "false"
    assert options["--client.showErrorDetails"] == "none"  # no tracebacks in the browser


def test_the_cli_and_the_app_agree_on_how_the_api_url_is_handed_over() -> None:
    assert console_cli.API_ENV == session.API_ENV
