"""``fanogan report``: one self-contained HTML page for an evaluated detector.

Everything is embedded (PNG as base64 data URIs), so the file can be mailed or archived:
the metrics table (image and, where masks were given, pixel level), ROC / PR / score
histogram, the top anomalies with residual overlays and the most/least anomalous grid, the
model's configuration and calibration, and the training curves.
"""

from __future__ import annotations

import base64
import html
import json
import os
import tempfile

from tf_fanogan.utils.atomic import write_file_atomically

SECTIONS = ("metrics", "plots", "anomalies", "model", "training")
_PLOTS = (("roc.png", "ROC"), ("pr.png", "Precision-recall"), ("histogram.png", "Score histogram"))
_ANOMALIES = (("top_anomalies.png", "Highest scores: input, reconstruction, residual overlay"),
              ("extremes.png", "Most and least anomalous"))


def _img(path: str, alt: str) -> str:
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>{html.escape(alt)}</figcaption></figure>'


def _table(rows) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return " – ".join(_fmt(x) for x in v)
    return str(v)


def build_report(detector_dir: str, evaluation_dir: str, out_path: str, title: str | None = None) -> str:
    """Writes the HTML report for ``detector_dir`` evaluated into ``evaluation_dir``
    (the ``--out`` of ``fanogan evaluate``); returns ``out_path``."""
    from tf_fanogan.detector import FAnoGAN
    from tf_fanogan.reporting import visualize

    metrics_path = os.path.join(evaluation_dir, "metrics.json")
    if not os.path.isfile(metrics_path):
        raise FileNotFoundError(f"{metrics_path}: run `fanogan evaluate ... --out {evaluation_dir}` first")
    with open(metrics_path) as f:
        m = json.load(f)
    missing = [n for n, _ in _PLOTS + _ANOMALIES if not os.path.isfile(os.path.join(evaluation_dir, n))]
    if missing:
        raise FileNotFoundError(f"{os.path.join(evaluation_dir, missing[0])}: missing; rerun `fanogan evaluate`")
    det = FAnoGAN.load(detector_dir)
    title = title or f"f-AnoGAN report: {os.path.basename(os.path.abspath(detector_dir))}"

    keys = ("n_normal", "n_anomalous", "auroc", "auroc_ci95", "aupr", "threshold", "threshold_source", "precision",
            "sensitivity", "specificity", "f1", "residual_only_auroc", "feature_only_auroc")
    metrics_html = _table([(k, m[k]) for k in keys if k in m])
    if "pixel" in m:
        metrics_html += "<h3>Pixel level</h3>" + _table(list(m["pixel"].items()))
    plots = "".join(_img(os.path.join(evaluation_dir, n), alt) for n, alt in _PLOTS)
    anomalies = "".join(_img(os.path.join(evaluation_dir, n), alt) for n, alt in _ANOMALIES)
    summary = det.summary()
    model_html = (_table([(f"{section}.{k}", v) for section, values in summary["config"].items()
                          if isinstance(values, dict) for k, v in values.items()]
                         + [(k, v) for k, v in summary["config"].items() if not isinstance(v, dict)]
                         + [(f"parameters.{k}", v) for k, v in summary["trainable_parameters"].items()])
                  + "<h3>Calibration</h3>"
                  + (_table([(k, v) for k, v in (summary["calibration"] or {}).items() if not isinstance(v, dict)])
                     if summary["calibration"] else "<p>Not calibrated.</p>"))
    if det.history_:
        with tempfile.TemporaryDirectory() as tmp:
            training_html = _img(visualize.training_curves_png(det.history_, os.path.join(tmp, "t.png")),
                                 "Training losses per epoch")
    else:
        training_html = "<p>No training history in this detector.</p>"

    blocks = {"metrics": ("Metrics", metrics_html), "plots": ("Plots", plots),
              "anomalies": ("Top anomalies", anomalies), "model": ("Model and calibration", model_html),
              "training": ("Training curves", training_html)}
    body = "".join(f'<section id="{sid}"><h2>{html.escape(blocks[sid][0])}</h2>{blocks[sid][1]}</section>'
                   for sid in SECTIONS)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1em; }}
th, td {{ border: 1px solid #ccc; padding: .25em .6em; text-align: left; font-size: 14px; }}
th {{ background: #f4f4f4; font-weight: 600; }}
figure {{ display: inline-block; margin: .5em; vertical-align: top; }}
img {{ max-width: 100%; }}
figcaption {{ font-size: 13px; color: #555; }}
section {{ border-top: 1px solid #ddd; padding-top: .5em; }}
</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Detector <code>{html.escape(os.path.abspath(detector_dir))}</code>, evaluation
<code>{html.escape(os.path.abspath(evaluation_dir))}</code>.</p>
{body}
</body></html>
"""
    write_file_atomically(out_path, lambda f: f.write(page), encoding="utf-8")
    return out_path
