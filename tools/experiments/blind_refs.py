#!/usr/bin/env python
"""What the network does with no usable reference: PSNR of its output on each generator's
validation triplets with the real reference, with the frame itself, and with other
stand-ins, the reference check off and no transfer (the network alone).

    python tools/experiments/blind_refs.py runs/validation --model PATH \\
        --stand-ins ref self grey
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

STAND_INS = ("input", "ref", "self", "grey", "zeros", "unrelated", "flipped_self",
             "aligned", "aligned_out", "sharp", "sharp_exact", "sharp_index", "sharp_trust",
             "aligned_index", "aligned_gated", "aligned_index_own")
# ground truth as the reference with the network's own match partly replaced: (the identity
# index instead of its own, full confidence instead of its own)
FORCED = {"sharp_exact": (True, True), "sharp_index": (True, False),
          "sharp_trust": (False, True)}


def aligned_to(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``reference`` warped onto ``image`` by the reference transfer's flow (RGB uint8)."""
    from refdeblur_video.image_files import from_float, to_float
    from refdeblur_video.refine.transfer import transfer_confidence

    aligned, _ = transfer_confidence(to_float(image), to_float(reference))
    return from_float(aligned, np.uint8)


def stand_in(name: str, images: dict[str, np.ndarray],
             with_reference: np.ndarray | None = None) -> np.ndarray | None:
    """The reference to try under ``name`` (None: the blurry input itself, unrestored).
    ``aligned``: the reference warped onto the blurry frame; ``aligned_out``: onto
    ``with_reference``, the network's output with the real reference; ``sharp``: the
    ground-truth frame itself (an oracle: a perfect reference in perfect alignment, which
    a plain copy would restore exactly); ``sharp_exact``, ``sharp_index``, ``sharp_trust``
    (in :func:`outputs`, :data:`FORCED`): the same with the network's match forced to the
    identity and/or to full confidence; ``aligned_index``: the reference warped onto the
    blurry frame by the transfer's flow, with the identity index (its own confidence);
    ``aligned_index_own``: the same with the confidence of the identity's own patch;
    ``aligned_gated``: the same, the identity only where the transfer trusts its flow
    (:func:`identity_where_trusted`)."""
    blurry, reference = images["blurry"], images["reference"]
    choices = {"input": lambda: None, "ref": lambda: reference, "self": lambda: blurry,
               "grey": lambda: np.full_like(blurry, 128),
               "zeros": lambda: np.zeros_like(blurry),
               "unrelated": lambda: images.get("unrelated"),
               "flipped_self": lambda: np.ascontiguousarray(blurry[::-1, ::-1]),
               "aligned": lambda: aligned_to(blurry, reference),
               "aligned_out": lambda: aligned_to(with_reference, reference),
               "sharp": lambda: images["sharp"]}
    return choices[name]()


def identity_where_trusted(weight: np.ndarray, threshold: float = 0.5):
    """A (1, H/4, W/4) bool tensor: the 4 x 4 blocks whose mean transfer weight (the
    hand-made confidence in the transfer's flow) reaches ``threshold``."""
    import torch

    h, w = weight.shape
    blocks = weight[: h // 4 * 4, : w // 4 * 4].reshape(h // 4, 4, w // 4, 4).mean((1, 3))
    return torch.from_numpy(blocks >= threshold)[None]


def forced_match_output(restorer, blurry: np.ndarray, sharp: np.ndarray,
                        identity: torch.Tensor | bool, trusted: bool,
                        measured: bool = False) -> np.ndarray:
    """The network's output with ``sharp`` as its reference and its match's index replaced
    by the identity (``identity``: everywhere, or a (1, H/4, W/4) bool tensor of where)
    and/or its confidence by 1 (``trusted``), or by the similarity of the patch the forced
    index picks (``measured``): what its
    fusion and decoder make of a perfect reference, and what its matching loses of it."""
    import torch

    from refdeblur_video.image_files import from_float
    from refdeblur_video.model.matching import MatchResult

    model = restorer.model
    x, r = (torch.from_numpy(a).permute(2, 0, 1)[None].float().div(255) for a in (blurry, sharp))
    h, w = x.shape[-2:]
    if h % 4 or w % 4:
        raise SystemExit("a forced match needs frame sizes divisible by 4")
    with torch.no_grad():
        own = model.match(x, r)
        index = own.index
        if identity is not False:
            place = torch.arange(h // 4 * (w // 4)).view(1, h // 4, w // 4)
            index = place if identity is True else torch.where(identity, place, own.index)
        confidence = torch.ones_like(own.confidence) if trusted else own.confidence
        if measured:
            from refdeblur_video.model.net import matched_confidence

            confidence = matched_confidence(model.phi(x), model.phi(model.soften(r)), index)
        out = model(x, r, matched=MatchResult(index, confidence))
    return from_float(out[0].permute(1, 2, 0).clamp(0, 1).numpy(), np.uint8)


def outputs(restorer, images: dict[str, np.ndarray], names: list[str]
            ) -> dict[str, np.ndarray]:
    """The network's output with each stand-in (``input``: the blurry frame); the one with
    the real reference is computed once, also where ``aligned_out`` builds on it."""
    blurry = images["blurry"]

    def run(ref: np.ndarray | None, placed: bool = False) -> np.ndarray:
        """``placed``: ``ref`` is already aligned onto the frame, so a ``prealign`` model
        must not move it again."""
        if ref is None:
            return blurry
        prealign, restorer.prealign = restorer.prealign, restorer.prealign and not placed
        try:
            return restorer.restore_images([blurry], [ref])[0]
        finally:
            restorer.prealign = prealign

    with_reference = run(images["reference"]) if {"ref", "aligned_out"} & set(names) else None
    warp = None  # the reference warped onto the blurry frame, and the transfer's weight

    def warped() -> tuple[np.ndarray, np.ndarray]:
        nonlocal warp
        if warp is None:
            from refdeblur_video.image_files import from_float, to_float
            from refdeblur_video.refine.transfer import transfer_confidence

            aligned, weight = transfer_confidence(to_float(blurry), to_float(images["reference"]))
            warp = from_float(aligned, np.uint8), weight
        return warp

    def one(name: str) -> np.ndarray:
        if name == "ref":
            return with_reference
        if name in FORCED:
            return forced_match_output(restorer, blurry, images["sharp"], *FORCED[name])
        if name in ("aligned", "aligned_out"):
            return run(warped()[0] if name == "aligned" else
                       stand_in(name, images, with_reference), placed=True)
        if name == "aligned_index":
            return forced_match_output(restorer, blurry, warped()[0], True, False)
        if name == "aligned_index_own":
            return forced_match_output(restorer, blurry, warped()[0], True, False, True)
        if name == "aligned_gated":
            aligned, weight = warped()
            return forced_match_output(restorer, blurry, aligned,
                                       identity_where_trusted(weight), False)
        return run(stand_in(name, images, with_reference))

    return {name: one(name) for name in names}


def transferred(output: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``output`` (uint8) finished by the default reference transfer with ``reference``."""
    from refdeblur_video.image_files import from_float, to_float
    from refdeblur_video.refine import DEFAULT_TRANSFER, transfer_reference

    return from_float(transfer_reference(to_float(output), to_float(reference),
                                         DEFAULT_TRANSFER), np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("valdir", type=Path, help="tools/recipes/make_validation.sh's folder")
    parser.add_argument("--model", default="default")
    parser.add_argument("--generators", nargs="+", default=["rs6dof", "shake", "average"])
    parser.add_argument("--stand-ins", nargs="+", default=["input", "ref", "self"],
                        choices=STAND_INS)
    parser.add_argument("--per-sequence", action="store_true",
                        help="also print each sequence's mean")
    parser.add_argument("--transfer", action="store_true",
                        help="each output (but the input's) finished by the reference "
                        "transfer with the real reference, as the default pipeline does")
    parser.add_argument("--match-prior", type=float, default=None,
                        help="override the model's match_prior")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from refdeblur_video.data.manifest import read_manifest
    from refdeblur_video.evaluate.metrics import psnr
    from refdeblur_video.evaluate.triplets import load_triplet, unrelated_partners
    from refdeblur_video.model import load_model

    restorer = load_model(args.model, "cpu", reference_check=0)
    matching = restorer.model.matching
    if args.match_prior is not None:
        restorer.model.matching = dataclasses.replace(matching, prior=args.match_prior)
    table = {}
    for generator in args.generators:
        triplets = list(read_manifest(args.valdir / generator / "manifest.jsonl"))
        # a sharp frame of another sequence, as refdeblur-eval's ablation picks it
        partners = unrelated_partners(triplets) if "unrelated" in args.stand_ins else None
        scores: dict[str, list[float]] = {name: [] for name in args.stand_ins}
        for i, triplet in enumerate(triplets):
            images = load_triplet(triplet, partners[i] if partners else None)
            for name, out in outputs(restorer, images, args.stand_ins).items():
                if args.transfer and name != "input":
                    out = transferred(out, images["reference"])
                scores[name].append(psnr(out, images["sharp"]))
        table[generator] = {name: float(np.mean(v)) for name, v in scores.items()}
        if args.per_sequence:
            for sequence in dict.fromkeys(t.sequence for t in triplets):
                rows = [i for i, t in enumerate(triplets) if t.sequence == sequence]
                print(f"  {sequence:14}" + "".join(
                    f"  {k} {np.mean([v[i] for i in rows]):.2f}" for k, v in scores.items()))
        print(f"{generator:10}" + "".join(f"  {k} {v:.2f}" for k, v in table[generator].items()),
              flush=True)
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "psnr": table}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
