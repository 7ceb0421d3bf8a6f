"""``generators`` mode: one model on the held-out set of every blur generator
(:mod:`refdeblur_video.data.validation`), in one table: generator x {input, network alone,
default (network + transfer), self reference, unrelated reference, the default where the
main job restores (frames already at least 0.8 as sharp as their reference left as they
are)}, PSNR and SSIM means.

The left-out generator (never used in training) comes first: its rows decide what ships.
Each generator's full triplet report is written to ``REPORT/<generator>/``; the table to
``REPORT/generators.json``.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path

from refdeblur_video.errors import UserError
from refdeblur_video.evaluate.report import format_table, report_paths, write_report
from refdeblur_video.evaluate.triplets import evaluate_triplets

VARIANTS = {
    "input": "input",
    "network_only": "network alone",
    "model": "default (network + transfer)",
    "self_ref": "self reference",
    "unrelated_ref": "unrelated reference",
    "pipeline": "default where the main job restores",
}


def read_index(valdir: str | Path) -> list[dict]:
    """The generators listed in ``valdir/generators.json``, the left-out one first."""
    path = Path(valdir) / "generators.json"
    if not path.is_file():
        raise UserError(f"no {path}: build the sets with tools/recipes/make_validation.sh")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["generators"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    return sorted(entries, key=lambda e: not e.get("left_out"))


def cpu_name() -> str:
    """The processor's model name (Linux), else what the platform module says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def evaluate_generators(
    valdir: str | Path,
    model: str | Path,
    report: str | Path,
    *,
    device: str = "auto",
    batch_size: int = 1,
    reference_check: float | None = None,
    examples: int = 0,
    only: Sequence[str] = (),
    quiet: bool = False,
) -> dict:
    """Evaluate ``model`` on every generator's manifest (all ablations); returns the table
    (also written to ``report/generators.json``)."""
    from refdeblur_video.model import load_model

    entries = [e for e in read_index(valdir) if not only or e["name"] in only]
    if not entries:
        raise UserError(f"none of the generators {', '.join(only)} is in {valdir}" if only
                        else f"{valdir} lists no generators")
    restorer = load_model(model, device, reference_check=reference_check)
    report = Path(report)
    table = {"model": str(model), "valdir": str(valdir), "cpu": cpu_name(),
             "device": device, "rows": [], "generators": []}
    started = time.perf_counter()
    for entry in entries:
        began = time.perf_counter()
        evaluation = evaluate_triplets(
            Path(valdir) / entry["manifest"], model, restorer=restorer, self_ref=True,
            unrelated_ref=True, network_only=True, batch_size=batch_size, quiet=quiet,
            examples=examples)
        write_report(evaluation, report / entry["name"])
        stats = evaluation.summary["metrics"]
        for variant, label in VARIANTS.items():
            table["rows"].append({
                "generator": entry["name"], "left_out": bool(entry.get("left_out")),
                "variant": variant, "label": label, "n": stats[f"psnr_{variant}"]["n"],
                "psnr": stats[f"psnr_{variant}"]["mean"], "ssim": stats[f"ssim_{variant}"]["mean"],
                "psnr_median": stats[f"psnr_{variant}"]["median"],
            })
        table["generators"].append({
            "name": entry["name"], "left_out": bool(entry.get("left_out")),
            "sources": entry.get("sources"), "seconds": time.perf_counter() - began,
            "references_dropped": evaluation.summary["references_dropped"],
            "per_sequence": {name: {k: group["metrics"][k]["mean"] for k in
                                    (f"psnr_{v}" for v in VARIANTS)}
                             for name, group in evaluation.summary["per_sequence"].items()},
        })
    table["seconds"] = time.perf_counter() - started
    report.mkdir(parents=True, exist_ok=True)
    (report / "generators.json").write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    return table


def written_files(report: str | Path, table: dict) -> list[Path]:
    """The files :func:`evaluate_generators` wrote for ``table`` into ``report``."""
    report = Path(report)
    return [report / "generators.json",
            *(path for entry in table["generators"]
              for path in report_paths(report / entry["name"]).values())]


def format_generators(table: dict) -> str:
    """The table as aligned text, one row per generator and variant."""
    header = ["generator", "variant", "n", "PSNR (dB)", "SSIM"]
    rows = []
    for row in table["rows"]:
        name = row["generator"] + (" (left out)" if row["left_out"] else "")
        psnr = "-" if row["psnr"] is None else f"{row['psnr']:.2f}"
        ssim = "-" if row["ssim"] is None else f"{row['ssim']:.4f}"
        rows.append([name, row["label"], str(row["n"]), psnr, ssim])
    return format_table(header, rows)
