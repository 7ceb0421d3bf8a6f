"""``triplets`` mode: run the model on every (blurry, sharp, reference) triplet of a manifest
and score input, model output and the optional ablations against the sharp frame.

Ablations (same model, another reference):

- ``self_ref``: the reference is the blurry frame itself -- what the network does without
  a sharp reference;
- ``unrelated_ref``: the reference is a sharp frame of another sequence, chosen
  deterministically (sequences in sorted order; sequence ``k`` borrows from sequence
  ``(k + n // 2) mod n``, its ``j``-th triplet's reference for our ``j``-th triplet), resized
  with area interpolation if its size differs -- whether the network really uses the
  reference's content;
- ``network_only``: the real reference, without the flow-guided reference transfer that
  follows the network (:mod:`refdeblur_video.refine`) -- what that step adds. It is the
  same network output as ``model``'s, before that step.

Every row also says what the main job would give: ``pipeline`` is the model's output, or
the blurry frame as it is where that frame is already at least the pipeline's default
``--threshold`` (0.8) as sharp as its reference (``sharpness_ratio``; the pipeline leaves
such a frame untouched, the reference being the sharpest frame near it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from refdeblur_video.data.manifest import Triplet, read_manifest
from refdeblur_video.errors import UserError
from refdeblur_video.evaluate import metrics, plots
from refdeblur_video.evaluate.crops import focus_map, make_example
from refdeblur_video.evaluate.report import Evaluation
from refdeblur_video.evaluate.runner import metric_columns, pick_extremes, progress, score
from refdeblur_video.evaluate.stats import gain, summarize, summarize_groups
from refdeblur_video.frames import DEFAULT_THRESHOLD
from refdeblur_video.frames.sharpness import sharpness
from refdeblur_video.refine import Refiner, restore_step, transfer_for
from refdeblur_video.video.sources import load_image

METRICS = ["psnr", "ssim"]
LABELS = {
    "input": "input",
    "model": "model",
    "self_ref": "model, self reference",
    "unrelated_ref": "model, unrelated reference",
    "network_only": "network only, no reference transfer",
    "pipeline": "model where the main job restores (input where at least "
                f"{DEFAULT_THRESHOLD:g} as sharp as the reference)",
    "gain": "gain (model - input)",
}


def unrelated_partners(triplets: Sequence[Triplet]) -> list[Triplet]:
    """For each triplet, the triplet of another sequence whose reference it borrows."""
    by_sequence: dict[str, list[int]] = {}
    for i, triplet in enumerate(triplets):
        by_sequence.setdefault(triplet.sequence, []).append(i)
    names = sorted(by_sequence)
    if len(names) < 2:
        raise UserError("the unrelated-reference ablation needs triplets of two or more sequences")
    partners: list[Triplet | None] = [None] * len(triplets)
    for k, name in enumerate(names):
        donor = by_sequence[names[(k + len(names) // 2) % len(names)]]
        for j, i in enumerate(by_sequence[name]):
            partners[i] = triplets[donor[j % len(donor)]]
    return partners  # type: ignore[return-value]


def _fit(image: np.ndarray, like: np.ndarray) -> np.ndarray:
    if image.shape == like.shape:
        return image
    return cv2.resize(image, (like.shape[1], like.shape[0]), interpolation=cv2.INTER_AREA)


def load_triplet(triplet: Triplet, partner: Triplet | None = None) -> dict[str, np.ndarray]:
    """A triplet's images (``blurry``, ``sharp``, ``reference``) and, given a ``partner``, its
    reference resized to the frame as ``unrelated``."""
    images = {
        "blurry": load_image(triplet.blur),
        "sharp": load_image(triplet.sharp),
        "reference": load_image(triplet.ref),
    }
    if partner is not None:
        images["unrelated"] = _fit(load_image(partner.ref), images["blurry"])
    return images


def _restore(restorer, loaded: list[dict[str, np.ndarray]], ablations: Sequence[str]):
    """Model outputs per variant for a batch of loaded triplets (same-size frames), and per
    variant whether each reference passed the reference check."""
    blurry = [item["blurry"] for item in loaded]
    references = {"model": [item["reference"] for item in loaded]}
    if "self_ref" in ablations:
        references["self_ref"] = blurry
    if "unrelated_ref" in ablations:
        references["unrelated_ref"] = [item["unrelated"] for item in loaded]
    # the step after the network, as the main job runs it (none for an untrained network)
    refine = Refiner(transfer_for(restorer) if getattr(restorer, "trained", True) else None)
    plain, restore = Refiner(None), restore_step(restorer)
    images, used = {}, {}
    for name, refs in references.items():
        outputs, used[name] = restore(blurry, refs)
        images[name] = [refine(out, frame, ref if kept else None)
                        for out, frame, ref, kept in zip(outputs, blurry, refs, used[name],
                                                         strict=True)]
        if name == "model" and "network_only" in ablations:
            images["network_only"] = [plain(out, frame, None)
                                      for out, frame in zip(outputs, blurry, strict=True)]
            used["network_only"] = used[name]
    return images, used


def _batches(triplets: Sequence[Triplet], partners, size: int):
    """Loaded triplets in runs of at most ``size`` frames of one shape."""
    batch: list[tuple[int, dict[str, np.ndarray]]] = []
    for i, triplet in enumerate(triplets):
        item = load_triplet(triplet, partners[i] if partners else None)
        if batch and (len(batch) >= size or item["blurry"].shape != batch[0][1]["blurry"].shape):
            yield batch
            batch = []
        batch.append((i, item))
    if batch:
        yield batch


def evaluate_triplets(
    manifest: str | Path,
    model: str | Path,
    *,
    split: str | None = None,
    device: str = "auto",
    self_ref: bool = False,
    unrelated_ref: bool = False,
    network_only: bool = False,
    y_channel: bool = False,
    quiet: bool = False,
    batch_size: int = 1,
    examples: int = 1,
    reference_check: float | None = None,
    restorer=None,
) -> Evaluation:
    """Score input, model and ablations on the manifest's triplets (one row per triplet).

    ``restorer`` replaces ``load_model(model, device)`` (anything with ``restore_floats``
    and ``trained``, like :class:`~refdeblur_video.model.Restorer`);
    ``reference_check`` overrides the model's (0: off). The ablations: ``self_ref`` (the
    blurry frame as its own reference), ``unrelated_ref`` (a sharp frame of another sequence)
    and ``network_only`` (the real reference, without the reference transfer after the
    network).
    """
    triplets = _read_sorted(manifest, split)
    ablations = [name for name, on in (("self_ref", self_ref), ("unrelated_ref", unrelated_ref),
                                       ("network_only", network_only)) if on]
    partners = unrelated_partners(triplets) if unrelated_ref else None
    if restorer is None:
        from refdeblur_video.model import load_model

        restorer = load_model(model, device, reference_check=reference_check)
    outputs = ["model", *ablations]
    variants = ["input", *outputs, "pipeline", "gain"]
    checked = [name for name in outputs if name != "self_ref"]  # a frame always passes itself
    rows = _score_rows(triplets, partners, restorer, ablations, checked,
                       batch_size=batch_size, y_channel=y_channel, quiet=quiet)

    value_columns = metric_columns(METRICS, variants)
    chosen = pick_extremes(rows, "psnr_gain", examples)
    sources = {"manifest": str(manifest), "model": str(model), "split": split or "all"}
    summary = {
        "mode": "triplets",
        "convention": metrics.convention_label(y_channel),
        "y_channel": y_channel,
        "sources": sources,
        "n_frames": len(rows),
        "model_trained": getattr(restorer, "trained", None),
        "metrics": summarize(rows, value_columns),
        "per_sequence": summarize_groups(rows, value_columns, "sequence"),
        "examples": [{"kind": kind, "blur": rows[i]["blur"], "psnr_gain": rows[i]["psnr_gain"]}
                     for kind, i in chosen],
        "references_dropped": {name: sum(1 - row[f"ref_used_{name}"] for row in rows)
                               for name in checked},
    }
    evaluation = Evaluation(
        mode="triplets",
        title="Model on triplets",
        convention=metrics.convention_label(y_channel),
        metrics=METRICS,
        variants=variants,
        variant_labels=LABELS,
        columns=["triplet", "sequence", "offset", "blur", "sharpness_ratio", *value_columns,
                 *(f"ref_used_{name}" for name in checked)],
        rows=rows,
        summary=summary,
        sources=dict(sources),
    )
    evaluation.notes = _notes(restorer, summary["references_dropped"], len(rows))
    evaluation.figures = _figures(rows, variants, summary["per_sequence"])
    evaluation.examples = [
        _example(kind, rows[i], triplets[i], partners[i] if partners else None, restorer,
                 ablations)
        for kind, i in chosen
    ]
    return evaluation


def _read_sorted(manifest: str | Path, split: str | None) -> list[Triplet]:
    """The manifest's triplets (of ``split``), grouped by sequence in a stable order."""
    triplets = sorted(read_manifest(manifest, split), key=lambda t: t.sequence)
    if not triplets:
        where = f" in split '{split}'" if split is not None else ""
        raise UserError(f"manifest {manifest} has no triplets{where}")
    return triplets


def _score_rows(triplets: Sequence[Triplet], partners, restorer, ablations: Sequence[str],
                checked: Sequence[str], *, batch_size: int, y_channel: bool,
                quiet: bool) -> list[dict]:
    """One row per triplet: PSNR and SSIM of the input and of every output (and of what the
    main job gives), and whether each checked output kept its reference."""
    rows: list[dict] = [{} for _ in triplets]
    bar = progress(len(triplets), "triplets", quiet)
    for batch in _batches(triplets, partners, max(1, batch_size)):
        restored, used = _restore(restorer, [item for _, item in batch], ablations)
        for k, (i, item) in enumerate(batch):
            triplet = triplets[i]
            row = {"triplet": i, "sequence": triplet.sequence, "offset": triplet.offset,
                   "blur": triplet.name}
            what = f"triplet {triplet.name}"
            row["psnr_input"], row["ssim_input"] = score(
                item["blurry"], item["sharp"], y_channel=y_channel, what=what)
            for name in ("model", *ablations):
                row[f"psnr_{name}"], row[f"ssim_{name}"] = score(
                    restored[name][k], item["sharp"], y_channel=y_channel, what=f"{what} ({name})")
            # what the main job gives: a frame this sharp against its reference is left as is
            ratio = sharpness(item["blurry"]) / max(sharpness(item["reference"]), 1e-12)
            row["sharpness_ratio"] = ratio
            kept = "input" if ratio >= DEFAULT_THRESHOLD else "model"
            row["psnr_pipeline"], row["ssim_pipeline"] = row[f"psnr_{kept}"], row[f"ssim_{kept}"]
            row["psnr_gain"] = gain(row["psnr_model"], row["psnr_input"])
            row["ssim_gain"] = gain(row["ssim_model"], row["ssim_input"])
            for name in checked:
                row[f"ref_used_{name}"] = int(used[name][k])
            rows[i] = row
        bar.update(len(batch))
    bar.close()
    return rows


def _notes(restorer, dropped: dict[str, int], total: int) -> list[str]:
    """The report's notes: an untrained network, and what the reference check did."""
    notes = []
    if getattr(restorer, "trained", True) is False:
        notes.append("The model has no trained weights: it returns its input unchanged, so "
                     "model and input scores are equal.")
    check = getattr(restorer, "reference_check", None)
    notes.append("The reference check is off: every reference was used." if check == 0
                 else "The reference check replaced " + ", ".join(
        f"{count} of {total} references ({LABELS[name]})" for name, count in dropped.items())
        + " by the frame itself (columns ref_used_*: 0 where it did).")
    return notes


def _figures(rows, variants, groups):
    shown = [v for v in variants if v != "gain"]
    series = {
        label: {v: [row[f"{metric}_{v}"] for row in rows] for v in shown}
        for metric, label in (("psnr", "PSNR (dB)"), ("ssim", "SSIM"))
    }
    starts = [(i, row["sequence"]) for i, row in enumerate(rows)
              if i == 0 or row["sequence"] != rows[i - 1]["sequence"]]
    curves = plots.metric_curves(
        list(range(len(rows))), series, xlabel="triplet (grouped by sequence)", labels=LABELS,
        boundaries=starts if len(starts) > 1 else (),
    )
    names = list(groups)
    means = {v: [groups[g]["metrics"][f"psnr_{v}"]["mean"] for g in names] for v in shown}
    bars = plots.group_bars(names, means, ylabel="PSNR (dB), mean", labels=LABELS)
    return [
        ("PSNR and SSIM per image against the sharp frame, sequences separated by dotted lines.",
         curves),
        ("Mean PSNR per sequence.", bars),
    ]


def _example(kind, row, triplet, partner, restorer, ablations):
    item = load_triplet(triplet, partner)
    restored = {name: images[0]
                for name, images in _restore(restorer, [item], ablations)[0].items()}
    panels = {"input (blurry)": item["blurry"], "model": restored["model"],
              "ground truth": item["sharp"], "reference": item["reference"]}
    for name in ablations:
        panels[LABELS[name]] = restored[name]
    if "unrelated" in item:
        panels[f"unrelated reference ({partner.sequence})"] = item["unrelated"]
    caption = (f"{triplet.name} ({triplet.sequence}): PSNR model {row['psnr_model']:.2f} dB, "
               f"input {row['psnr_input']:.2f} dB")
    return make_example(
        f"{kind.capitalize()} triplet by PSNR gain: {triplet.name}", caption, panels,
        focus_map(restored["model"], item["blurry"], item["sharp"]), largest=kind == "best",
    )
