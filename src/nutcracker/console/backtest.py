"""Backtest: an example or an uploaded config and candle file, run by the API in a worker process;
a progress bar while it runs, then its headline and its HTML report inline."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from nutcracker.api.client import ApiClient, ApiError, Backtest, SessionEndedError
from nutcracker.console.session import forget

__all__ = ["CANDLES_MAX_MB", "backtest_page"]

CANDLES_MAX_MB = 20  # the API's limit (and the console's --server.maxUploadSize)
CONFIG_MAX_KB = 64
POLL_S = 0.5
JOB_KEY = "backtest_job"


def backtest_page(client: ApiClient) -> None:
    st.caption(
        "The API runs the backtest in a worker process, never on the engine's loop: the same decision "
        "code as live, on the candles you give or the seeded synthetic market."
    )
    with st.container(border=True):
        source = st.radio("Configuration", ["Example", "Upload"], horizontal=True, key="bt_source")
        example, config = None, None
        if source == "Upload":
            config = st.file_uploader(
                f"Config file (TOML, ≤ {CONFIG_MAX_KB} KB)", type=["toml"], key="bt_config"
            )
        else:
            example = st.selectbox("Example", client.backtest_examples(), key="bt_example")
        candles = st.file_uploader(
            f"Candle file (CSV or CSV.gz, ≤ {CANDLES_MAX_MB} MB, header timestamp,open,high,low,close,volume)"
            ": optional, for a one-symbol config; without it, the synthetic market",
            type=["csv", "gz"],
            key="bt_candles",
        )
        ready = [f for f in (config, candles) if f is not None]
        if ready:
            st.caption(" · ".join(f"{f.name} ({f.size / 1024:,.1f} KB) ready to send" for f in ready))
        left, right = st.columns(2)
        synthetic = left.number_input(
            "Synthetic candles (without a candle file)",
            min_value=1,
            max_value=200_000,
            value=43_200,
            step=1_000,
            key="bt_synthetic",
            help="One-minute candles of the seeded synthetic market: 43,200 is 30 days",
            disabled=candles is not None,
        )
        seed = right.number_input(
            "Seed", min_value=0, max_value=2**32 - 1, value=7, key="bt_seed", disabled=candles is not None
        )
        run = st.button("Run backtest", type="primary", icon=":material/play_arrow:", key="bt_run")
    if run:
        _start(client, source, example, config, candles, int(synthetic), int(seed))
    job_id = st.session_state.get(JOB_KEY)
    if isinstance(job_id, str):
        _job(client, job_id)
    _history(client)


def _start(
    client: ApiClient,
    source: str | None,
    example: str | None,
    config: object,
    candles: object,
    synthetic: int,
    seed: int,
) -> None:
    uploaded_config = _bytes(config)
    uploaded_candles = _bytes(candles)
    if source == "Upload" and uploaded_config is None:
        st.error("Choose a config file (TOML) to upload, or pick Example.")
        return
    if uploaded_candles is not None and len(uploaded_candles[1]) > CANDLES_MAX_MB * 1024 * 1024:
        st.error(f"The candle file is above {CANDLES_MAX_MB} MB: send fewer candles, or gzip it (.csv.gz).")
        return
    try:
        job = client.start_backtest(
            example=example if source != "Upload" else None,
            config=uploaded_config if source == "Upload" else None,
            candles=uploaded_candles,
            synthetic=None if uploaded_candles else synthetic,
            seed=None if uploaded_candles else seed,
        )
    except SessionEndedError:
        raise
    except ApiError as e:
        for problem in e.errors or [{"field": "", "message": e.detail}]:
            st.error(f"{problem['field']}: {problem['message']}" if problem["field"] else problem["message"])
        return
    st.session_state[JOB_KEY] = job["id"]


def _bytes(upload: object) -> tuple[str, bytes] | None:
    if upload is None:
        return None
    name = str(getattr(upload, "name", "upload"))
    return name, bytes(upload.getvalue())  # type: ignore[attr-defined]


@st.fragment(run_every=POLL_S)
def _progress(client: ApiClient, job_id: str) -> None:
    try:
        job = client.backtest(job_id)
    except SessionEndedError as e:
        forget(e.detail)
        st.rerun(scope="app")
    except ApiError as e:
        st.error(e.detail)
        return
    if job["state"] in ("done", "failed"):
        st.rerun(scope="app")  # the report is drawn by the page, outside this poll
    done = f"{job['progress']:.0%} of the candles"
    st.progress(job["progress"], text=f"{job['state']} · {done} · {job['source']}")


def _job(client: ApiClient, job_id: str) -> None:
    try:
        job = client.backtest(job_id)
    except ApiError as e:
        if isinstance(e, SessionEndedError):
            raise
        st.session_state.pop(JOB_KEY, None)
        st.info(f"The last backtest is gone: {e.detail}")
        return
    st.markdown(f"**Backtest {job['id']}** · {job['source']}")
    if job["state"] in ("queued", "running"):
        _progress(client, job_id)
        return
    if job["state"] == "failed":
        st.error(f"The backtest failed: {job['error']}")
        return
    st.progress(1.0, text=f"done · {_when(job['finished_ms'])}")
    for symbol, lines in job["headline"].items():
        st.markdown(f"**{symbol}**  \n" + "  \n".join(lines))
    report = client.backtest_report(job_id)
    st.download_button(
        "Download the report (HTML)",
        report,
        file_name=f"nutcracker-backtest-{job['id']}.html",
        mime="text/html",
        key="bt_download",
    )
    # our own report (every user string in it is escaped): self-contained, its charts need its scripts.
    # It is drawn for a white page; the iframe would show the console's dark theme through it
    page = report.replace("<head>", "<head><style>html,body{background:#fff;color:#111}</style>", 1)
    st.iframe(page, height=1100)


def _when(ts_ms: int | None) -> str:
    if ts_ms is None:
        return ""
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _history(client: ApiClient) -> None:
    jobs: list[Backtest] = client.backtests()
    if not jobs:
        return
    with st.expander(f"Your backtests ({len(jobs)}, kept while the server runs)"):
        for job in jobs:
            left, right = st.columns([4, 1], vertical_alignment="center")
            left.caption(f"{_when(job['created_ms'])} · {job['state']} · {job['source']}")
            if right.button("Show", key=f"bt_show_{job['id']}", width="stretch"):
                st.session_state[JOB_KEY] = job["id"]
                st.rerun()
