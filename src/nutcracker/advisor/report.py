"""The advisor's evidence as one self-contained HTML page, in the backtest report's style.

Per symbol: the verdict and the parameter diff, a chart of each fold's out-of-sample score for
the current and the searched parameters (in-sample beside it), the per-fold table, the excursion
model's comparison with its baseline, and the disclaimer. plotly.js is inline, no network access.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import plotly.io as pio
from plotly.offline import get_plotlyjs

from nutcracker.advisor.suggestion import DISCLAIMER, Advice
from nutcracker.backtest.report import _CSP, _PLOT_CONFIG, _RENDERED_JS, _STYLE, _WHITE


def _score_figure(record: dict[str, Any]) -> dict[str, Any]:
    folds = record["evidence"]["folds"]
    x = [f"fold {f['fold']}" for f in folds]
    traces = []
    for sample, dash in (("out_of_sample", None), ("in_sample", "dot")):
        for who, color in (("current", "#636efa"), ("suggested", "#EF553B")):
            y = [f[sample][who]["score"] for f in folds]
            name = f"{who}, {sample.replace('_', ' ')}"
            trace: dict[str, Any] = {
                "type": "bar" if dash is None else "scatter",
                "x": x,
                "y": y,
                "name": name,
            }
            trace["marker" if dash is None else "line"] = {"color": color, **({"dash": dash} if dash else {})}
            traces.append(trace)
    layout = {
        **_WHITE,
        "title": {"text": "score per fold (quote)", "x": 0.01},
        "height": 360,
        "barmode": "group",
    }
    return {"data": traces, "layout": layout}


def _fold_rows(record: dict[str, Any]) -> str:
    esc = html.escape
    rows = []
    for f in record["evidence"]["folds"]:
        cur, sug = f["out_of_sample"]["current"], f["out_of_sample"]["suggested"]
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{esc(str(v))}</td>"
                for v in (
                    f["fold"],
                    f"{f['train']['first']} – {f['train']['last']}",
                    f"{f['test']['first']} – {f['test']['last']}",
                    json.dumps(f["winner"]),
                    cur["net_pnl_quote"],
                    sug["net_pnl_quote"],
                    cur["max_drawdown_quote"],
                    sug["max_drawdown_quote"],
                    "yes" if f["beats_current"] else "no",
                )
            )
            + "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("fold", "train", "test", "winner", "PnL cur", "PnL sugg", "DD cur", "DD sugg", "beats")
    )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def render(advices: list[Advice]) -> str:
    """Return the evidence page of ``advices``."""
    esc = html.escape
    body = ["<h1>Nutcracker advisor: evidence</h1>", f"<p><strong>{esc(DISCLAIMER)}</strong></p>"]
    for i, a in enumerate(advices):
        r = a.record
        body.append(f'<h2 id="symbol-{i}">{esc(a.symbol)}: {esc(r["verdict"])} ({esc(r["id"])})</h2>')
        body.append(f"<p>{esc(r['summary'])}. Data: {esc(json.dumps(r['window']))}; seed {r['seed']}.</p>")
        if r["diff"]:
            body.append(f"<pre>{esc(json.dumps(r['diff'], indent=2))}</pre>")
        figure = _score_figure(r)
        div = pio.to_html(
            figure,
            include_plotlyjs=False,
            full_html=False,
            div_id=f"folds-{i}-plot",
            config=_PLOT_CONFIG,
            post_script=_RENDERED_JS,
            validate=False,
        )
        body.append(  # data-traces: a browser test counts what was drawn against it, as the backtest's
            f'<section id="folds-{i}" class="nc-chart nc-folds" data-symbol="{esc(a.symbol)}" '
            f'data-traces="{len(figure["data"])}">{div}</section>'
        )
        body.append(_fold_rows(r))
        body.append(f"<h3>Excursion model</h3><pre>{esc(json.dumps(r['excursion_model'], indent=2))}</pre>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>Nutcracker advisor</title><style>{_STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        "</head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_outputs(out: Path, advices: list[Advice]) -> None:
    """Write ``suggestions.json`` and ``report.html`` into ``out``, each atomically."""
    out.mkdir(parents=True, exist_ok=True)
    records = json.dumps([a.record for a in advices], sort_keys=True, indent=2) + "\n"
    for name, text in (("suggestions.json", records), ("report.html", render(advices))):
        tmp = out / f".{name}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out / name)
