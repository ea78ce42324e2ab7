"""Records `make demo` in BENCHMARKS.md: runs ``examples/elpv_demo.py`` from scratch in a new
output folder (so the wall time is a full training), then writes the ``demo`` section and
copies its overlay picture to ``docs/elpv_overlay.png``.

    python -m benchmarks.demo --record
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from benchmarks._report import ROOT, machine, write_section
from benchmarks.units import git_commit


def markdown(m: dict, commit: str, command: str) -> str:
    c = m["config"]
    return f"""## `make demo`: f-AnoGAN on real ELPV solar cells

Command: `{command}` (runs `python examples/elpv_demo.py`, what `make demo` runs, in a new folder), commit
`{commit[:10]}`. Machine: {machine()}. CPU recipe: {c['model']['image_size']}×{c['model']['image_size']}×1, width
{c['model']['dim']}, z ~ N(0, I) with a linear encoder head, {m['updates'].get('gan')} generator updates (batch
{c['gan']['batch_size']}, Adam {c['gan']['learning_rate']:g}) and {m['updates'].get('encoder')} izi_f encoder updates,
seed {c['seed']}; threshold calibrated at 5% FPR on held-out functional cells; one run.

| AUROC | AUPR | precision | sensitivity | specificity | F1 | A_R-only AUROC | A_D-only AUROC | held-out functional izi | wall time |
|---|---|---|---|---|---|---|---|---|---|
| {m['auroc']:.4f} | {m['aupr']:.4f} | {m['precision']:.4f} | {m['sensitivity']:.4f} | {m['specificity']:.4f} | {m['f1']:.4f} | {m['residual_only_auroc']:.4f} | {m['feature_only_auroc']:.4f} | {m['holdout_izi']:.4f} | {m['total_seconds']:.0f} s (training {m['train_seconds']:.0f} s) |

Pictures of this run: [G(z) samples](docs/demo_samples.png), [held-out functional cells and their
reconstructions](docs/demo_reconstructions.png), and the README's overlay (`docs/elpv_overlay.png`: three functional
and the three highest-scoring defective cells).
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--record", action="store_true")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 + 2 updates at 16x16, width 8; records nothing")
    args = p.parse_args(argv)
    out = tempfile.mkdtemp(prefix="demo-")
    cmd = [sys.executable, os.path.join(ROOT, "examples", "elpv_demo.py"), "--out", out]
    if args.quick:
        cmd += ["--gan-iterations", "2", "--encoder-iterations", "2", "--image-size", "16", "--dim", "8", "--no-xla"]
    subprocess.run(cmd, check=True, cwd=ROOT)
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    if args.record and not args.quick:
        for src, dst in (("overlay.png", "elpv_overlay.png"), ("samples.png", "demo_samples.png"),
                         ("reconstructions.png", "demo_reconstructions.png")):
            shutil.copy(os.path.join(out, src), os.path.join(ROOT, "docs", dst))
        write_section("demo", markdown(metrics, git_commit(), "python -m benchmarks.demo --record"))
        print("wrote the demo section of BENCHMARKS.md and docs/elpv_overlay.png")
    shutil.rmtree(out, ignore_errors=True)
    print(json.dumps({k: metrics[k] for k in ("auroc", "aupr", "f1", "holdout_izi", "total_seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
