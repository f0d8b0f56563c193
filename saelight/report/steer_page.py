"""What `saelight steer` writes: steer.json, the dose-response figure, one self-contained HTML
page and the `steer/*` W&B tables, all from one payload (`evaluation.steering.steer_sweep` plus
the command's run, SAE and clip fields).

The page needs nothing beside it: each clip's audio is an embedded WAV (soundfile), its
spectrogram and the dose-response curve are embedded PNGs (matplotlib's Agg canvas), and each
steered transcript is shown as a word diff against the clean one (difflib: struck-through words
the edit removed, underlined words it added). A classifier's rows list its five most likely
classes, those not among the clean top five underlined.
"""

from __future__ import annotations

import base64
import difflib
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from saelight.io.atomic import atomic_write_bytes, atomic_write_text

STEER_DIR = "steer"
"""`<run>/steer/`: where `saelight steer` writes by default."""
STEER_JSON = "steer.json"
STEER_HTML = "steer.html"
STEER_PNG = "steer.png"
METRICS = {
    "seq2seq": ("cer", "kl"),
    "ctc": ("cer", "kl"),
    "classifier": ("kl", "top1_agreement"),
    "hidden": ("hidden_change", "cosine", "probe_kl"),
}
"""What the dose-response curve plots, per output kind (`evaluation.steering`)."""
NAMES = {
    "cer": "CER vs clean",
    "wer": "WER vs clean",
    "kl": "KL(clean ‖ steered)",
    "top1_agreement": "top-1 agreement",
    "hidden_change": "Σ‖h′−h‖² / Σ‖h‖² (last layer)",
    "cosine": "cos(h′, h) (last layer)",
    "probe_kl": "clip probe KL(clean ‖ steered)",
    "probe_agreement": "clip probe top-1 agreement",
    "edit_norm": "mean ‖Δ‖ per frame",
}
COLOURS = {"latents": "C3", "random_direction": "C0", "random_latents": "C2"}


def sweep_rows(payload: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """(columns, one row per α × variant): the edit's mean norm per frame and every score."""
    keys = [k for k in NAMES if k != "edit_norm" and any(k in r for r in payload["sweep"])]
    columns = ["alpha", "variant", "edit norm", *keys, "output max abs diff"]
    rows = [
        [r["alpha"], r["variant"], r["edit_norm"], *[r.get(k) for k in keys],
         r["output_max_abs_diff"]]
        for r in payload["sweep"]
    ]  # fmt: skip
    return columns, rows


def output_rows(payload: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """(columns, one row per clip × α × variant): the output and its distance to the clean one."""
    columns = ["clip", "alpha", "variant", "output", "clean output", "CER", "KL"]
    rows = []
    for r in payload["sweep"]:
        for clip, base, out in zip(payload["clips"], payload["clean"], r["clips"], strict=True):
            rows.append(
                [clip["clip_id"], r["alpha"], r["variant"], _text(out), _text(base),
                 out.get("cer"), out.get("kl", out.get("probe_kl"))]
            )  # fmt: skip
    return columns, rows


def _text(out: dict[str, Any]) -> str:
    """A transcript, or a classifier's top five as "class (p)"."""
    if "text" in out:
        return str(out["text"])
    return ", ".join(f"{c} ({p:.2f})" for c, p in out.get("top5", []))


def steer_figure(payload: dict[str, Any]) -> Figure:
    """The dose-response curves: each score against α, the edited latents and both controls."""
    sweep = payload["sweep"]
    metrics = [m for m in METRICS[payload["output"]] if any(r.get(m) is not None for r in sweep)]
    metrics = metrics or ["edit_norm"]
    fig = Figure(figsize=(4.2 * len(metrics), 3.2))
    FigureCanvasAgg(fig)
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for variant, colour in COLOURS.items():
            points = sorted(
                (r["alpha"], r[metric])
                for r in payload["sweep"]
                if r["variant"] == variant and r.get(metric) is not None
            )
            if points:
                a, y = zip(*points, strict=True)
                ax.plot(a, y, "o-", color=colour, label=variant.replace("_", " "))
        ax.set_xlabel(f"α ({payload['mode']})")
        ax.set_ylabel(NAMES[metric])
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=8)
    fig.suptitle(f"{payload['sae']} at L{payload['layer']}: latents {payload['latents']}")
    fig.tight_layout()
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def wav_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM WAV of a mono wave (soundfile)."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(wave, -1, 1), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def spectrogram_png(wave: np.ndarray, sample_rate: int) -> bytes:
    """A log-power spectrogram of the clip (matplotlib's specgram)."""
    fig = Figure(figsize=(5, 1.6))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.08, 0.22, 0.9, 0.74))
    nfft = min(512, 1 << int(np.log2(max(len(wave), 16))))
    ax.specgram(wave, NFFT=nfft, Fs=sample_rate, noverlap=nfft * 3 // 4, cmap="magma")
    ax.set_xlabel("s", fontsize=7, labelpad=0)
    ax.tick_params(labelsize=6)
    return _png(fig)


def word_diff(clean: str, steered: str) -> str:
    """HTML of `steered` against `clean`: removed words in <del>, added ones in <ins>."""
    a, b = clean.split(), steered.split()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(html.escape(" ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(f"<del>{html.escape(' '.join(a[i1:i2]))}</del>")
        if j2 > j1:
            out.append(f"<ins>{html.escape(' '.join(b[j1:j2]))}</ins>")
    return " ".join(out) if out else "<em>(empty)</em>"


def _classes(top5: list[Any], clean: list[Any]) -> str:
    known = {c for c, _ in clean}
    cells = []
    for name, p in top5:
        text = html.escape(f"{name} ({p:.2f})")
        cells.append(text if name in known else f"<ins>{text}</ins>")
    return ", ".join(cells)


def _cell(out: dict[str, Any], base: dict[str, Any]) -> str:
    if "text" in out:
        return word_diff(str(base.get("text", "")), str(out["text"]))
    if "top5" in out:
        return _classes(out["top5"], base.get("top5", []))
    return ""


def _score(out: dict[str, Any]) -> str:
    keys = ("cer", "kl", "hidden_change", "cosine", "probe_kl")
    return ", ".join(f"{k} {out[k]:.3g}" for k in keys if out.get(k) is not None)


CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:left;vertical-align:top;overflow-wrap:anywhere}th{background:#f3f3f3}del{color:#b00;background:#fdd}
ins{color:#060;background:#dfd;text-decoration:underline}section.clip{border-top:2px solid #ddd;
margin-top:1.5em}img{max-width:100%}audio{display:block;width:100%;max-width:500px}
.clean{background:#f7f7f7}"""


def render_page(
    payload: dict[str, Any], waves: list[np.ndarray], sample_rate: int, curve_png: bytes
) -> str:
    """The self-contained steer page (see the module docstring); `curve_png`: the figure."""
    esc = html.escape
    curve = _data_uri(curve_png, "image/png")
    columns, rows = sweep_rows(payload)
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    selection = payload.get("selection")
    n = len(payload["latents"])
    chosen = f" (the {n} best detectors of {esc(selection)})" if selection else ""
    parts = [
        f"<h1>Steering {esc(payload['sae'])} at layer {payload['layer']}</h1>",
        f"<p>Mode <b>{esc(payload['mode'])}</b>, latents {payload['latents']}"
        f"{chosen}; controls: an equal-norm random direction and the "
        f"frequency-matched random latents {payload['control_latents']}. Output read: "
        f"<b>{esc(payload['architecture'] or payload['note'])}</b>. "
        "Edits are x + decode(z′) − decode(z), so α = 0 is the clean run.</p>",
        f'<img class="curve" alt="dose-response" src="{curve}">',
        f'<table class="sweep"><tr>{head}</tr>{body}</table>',
    ]
    for c, clip in enumerate(payload["clips"]):
        parts.append(_clip_section(payload, c, clip, waves[c], sample_rate))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>steer {esc(payload['sae'])}</title><style>{CSS}</style></head>"
        f'<body data-ready="1">{"".join(parts)}</body></html>'
    )


def _clip_section(
    payload: dict[str, Any], c: int, clip: dict[str, Any], wave: np.ndarray, sample_rate: int
) -> str:
    esc = html.escape
    base = payload["clean"][c]
    labels = ", ".join(f"{k}={v}" for k, v in (clip.get("labels") or {}).items())
    rows = [f'<tr class="clean"><td>clean</td><td></td><td>{esc(_text(base))}</td><td></td></tr>']
    for r in payload["sweep"]:
        out = r["clips"][c]
        rows.append(
            f"<tr><td>{esc(r['variant'])}</td><td>{_fmt(r['alpha'])}</td>"
            f"<td>{_cell(out, base)}</td><td>{esc(_score(out))}</td></tr>"
        )
    audio = _data_uri(wav_bytes(wave, sample_rate), "audio/wav")
    spec = _data_uri(spectrogram_png(wave, sample_rate), "image/png")
    return (
        f'<section class="clip"><h2>{esc(clip["clip_id"])}</h2><p>{esc(labels)}</p>'
        f'<audio controls preload="auto" src="{audio}"></audio>'
        f'<img class="spectrogram" alt="spectrogram" src="{spec}">'
        "<table><tr><th>variant</th><th>α</th><th>output</th><th>vs clean</th></tr>"
        f"{''.join(rows)}</table></section>"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "–" if value is None else str(value)


def write_steer(
    folder: Path, payload: dict[str, Any], waves: list[np.ndarray], sample_rate: int
) -> Path:
    """steer.json, steer.png and steer.html under `folder` (each written atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / STEER_JSON, json.dumps(payload, indent=1, default=float))
    curve = _png(steer_figure(payload))
    atomic_write_bytes(folder / STEER_PNG, curve)
    atomic_write_text(folder / STEER_HTML, render_page(payload, waves, sample_rate, curve))
    return folder / STEER_HTML


def log_steer(run: Any, payload: dict[str, Any], folder: Path) -> None:
    """`steer/sweep` and `steer/outputs` (wandb.Tables of raw values) and `steer/curve`."""
    import wandb

    data: dict[str, Any] = {}
    for key, build in (("sweep", sweep_rows), ("outputs", output_rows)):
        columns, rows = build(payload)
        data[f"steer/{key}"] = wandb.Table(columns=columns, data=rows)
    if (folder / STEER_PNG).is_file():
        data["steer/curve"] = wandb.Image(str(folder / STEER_PNG), caption="dose-response")
    run.log(data)
