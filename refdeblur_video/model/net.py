"""The reference-based deblurring network (paper section 3, Fig. 2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import ConvGroup, ResGroup, conv3x3
from .config import ModelConfig
from .inference import InferenceSettings, Matching
from .matching import EPS, MatchResult, match
from .phi import MatchingEncoder
from .ream import REAM
from .sffm import SFFM


def _resize(image: Tensor, factor: float) -> Tensor:
    return F.interpolate(image, scale_factor=factor, mode="bilinear", align_corners=False,
                         antialias=factor < 1)


def matched_confidence(query: Tensor, key: Tensor, index: Tensor) -> Tensor:
    """Cosine similarity of each query patch with its matched key patch, differentiably."""
    b, _, h, w = query.shape
    q = F.unfold(query, 3, padding=1)
    k = F.unfold(key, 3, padding=1)
    q = q / q.norm(dim=1, keepdim=True).clamp_min(EPS)
    k = k / k.norm(dim=1, keepdim=True).clamp_min(EPS)
    picked = torch.gather(k, 2, index.view(b, 1, h * w).expand(-1, k.shape[1], -1))
    return (q * picked).sum(1).view(b, 1, h, w).clamp(-1.0, 1.0)


@dataclass
class ReferenceScores:
    """Per sample: mean match confidence of the frame against its reference and against (a
    softened copy of) itself, and the reference match (padded 1/4-resolution maps)."""

    reference: Tensor
    own: Tensor
    matched: MatchResult


class RefDeblurNet(nn.Module):
    """U-Net encoder-decoder with SFFMs and three REAMs; output = input + residual.

    ``config`` is the architecture; ``matching`` how the reference is searched (None: the
    default :class:`~.inference.InferenceSettings`), a run-time setting that may be changed
    on a built network.
    """

    stride = 4

    def __init__(self, config: ModelConfig, matching: Matching | None = None) -> None:
        super().__init__()
        self.config = config
        self.matching = matching if matching is not None else InferenceSettings().matching
        c1, c2, c3 = config.channels
        r1, r2, r3 = config.ref_channels
        h2, h3 = config.sffm_hidden
        n1, n2, n3 = config.n_resblocks
        # blur encoder
        self.head = conv3x3(3, c1)
        self.enc1 = ResGroup(c1, n1)
        self.down1 = conv3x3(c1, c2, stride=2)
        self.sffm2 = SFFM(c2, h2)
        self.enc2 = ResGroup(c2, n2)
        self.down2 = conv3x3(c2, c3, stride=2)
        self.sffm3 = SFFM(c3, h3)
        self.enc3 = ResGroup(c3, n3)
        # reference encoder (shallow) and matching encoder phi
        self.ref1 = ConvGroup(3, r1, 1)
        self.ref2 = ConvGroup(r1, r2, 2)
        self.ref3 = ConvGroup(r2, r3, 2)
        self.phi = MatchingEncoder(config.phi_channels)
        gate = config.fusion_gate
        self.ream1 = REAM(c1, r1, scale=4, gate=gate)
        self.ream2 = REAM(c2, r2, scale=2, gate=gate)
        self.ream3 = REAM(c3, r3, scale=1, gate=gate)
        # decoder
        self.dec3 = ResGroup(c3, n3)
        self.up3 = nn.ConvTranspose2d(c3, c2, 4, stride=2, padding=1)
        self.merge2 = nn.Conv2d(2 * c2, c2, 1)
        self.dec2 = ResGroup(c2, n2)
        self.up2 = nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1)
        self.merge1 = nn.Conv2d(2 * c1, c1, 1)
        self.dec1 = ResGroup(c1, n1)
        self.tail = conv3x3(c1, 3)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def soften(self, image: Tensor) -> Tensor:
        """Down- and up-sampled, so a sharp reference looks as soft as the blurry query."""
        factor = self.config.ref_blur_factor
        return _resize(_resize(image, 1 / factor), factor) if factor > 1 else image

    def _match_features(self, query: Tensor, key: Tensor, mode: str | None = None,
                        radius: int | None = None,
                        in_place: Tensor | None = None) -> MatchResult:
        """The configured search (or the one the caller names); ``in_place``: a (B,) bool
        tensor of the samples whose reference was placed onto the frame before the network
        (:mod:`refdeblur_video.refine.prealign`), each of whose patches takes the one in
        its own place instead."""
        # matching always in float32: reduced precision would blur the arg-max
        with torch.autocast(query.device.type, enabled=False):
            query, key = query.float(), key.float()
            # the configured search, or a plain one where the caller names its own
            with torch.no_grad():
                found = self._search_unplaced(query, key, mode, radius, in_place)
            if torch.is_grad_enabled() and query.requires_grad:
                found = MatchResult(found.index, matched_confidence(query, key, found.index))
        return found

    def _search_unplaced(self, query: Tensor, key: Tensor, mode: str | None,
                         radius: int | None, in_place: Tensor | None) -> MatchResult:
        """The placed samples matched in place; the search (configured, or the caller's)
        run only on the others."""
        how = self.matching
        placed = in_place is not None and bool(in_place.any())
        if placed and bool(in_place.all()):
            return match(query, key, "identity")
        rest = ~in_place if placed else None
        searched = match(query if rest is None else query[rest],
                         key if rest is None else key[rest], mode or how.mode,
                         radius or how.radius, how.memory_mb, prior=0.0 if mode else how.prior)
        if rest is None:
            return searched
        in_place_found = match(query[in_place], key[in_place], "identity")
        index = searched.index.new_empty((len(query), *searched.index.shape[1:]))
        confidence = searched.confidence.new_empty((len(query),
                                                    *searched.confidence.shape[1:]))
        index[rest], confidence[rest] = searched.index, searched.confidence
        index[in_place], confidence[in_place] = in_place_found.index, in_place_found.confidence
        return MatchResult(index, confidence)

    def _pad(self, *images: Tensor) -> list[Tensor]:
        h, w = images[0].shape[-2:]
        pad_h, pad_w = (-h) % self.stride, (-w) % self.stride
        if not (pad_h or pad_w):
            return list(images)
        return [F.pad(image, (0, pad_w, 0, pad_h), mode="replicate") for image in images]

    def match(self, blurry: Tensor, reference: Tensor,
              in_place: Tensor | None = None) -> MatchResult:
        """Index and confidence maps at 1/4 resolution (inputs already padded);
        ``in_place`` as in :meth:`_match_features`."""
        return self._match_features(self.phi(blurry), self.phi(self.soften(reference)),
                                    in_place=in_place)

    def reference_scores(self, blurry: Tensor, reference: Tensor,
                         in_place: Tensor | None = None) -> ReferenceScores:
        """How well each reference shows its frame's scene (see :class:`ReferenceScores`)."""
        blurry, reference = self._pad(blurry, reference)
        query = self.phi(blurry)
        found = self._match_features(query, self.phi(self.soften(reference)),
                                     in_place=in_place)
        # the frame finds itself in place: one cell of search is enough
        own = self._match_features(query, self.phi(self.soften(blurry)), "local", 1)
        return ReferenceScores(found.confidence.mean((1, 2, 3)),
                               own.confidence.mean((1, 2, 3)), found)

    def reference_agreement(self, blurry: Tensor, reference: Tensor) -> Tensor:
        """(B,) ratios of :meth:`reference_scores`: about 1 for a reference of the same scene,
        well below 1 for another scene."""
        scores = self.reference_scores(blurry, reference)
        return scores.reference / scores.own.clamp_min(EPS)

    def forward(self, blurry: Tensor, reference: Tensor,
                matched: MatchResult | None = None,
                in_place: Tensor | None = None) -> Tensor:
        """Deblur ``blurry`` (B, 3, H, W) in [0, 1] with ``reference`` of the same size.

        The network uses every reference it is given; the inference-time reference check
        (``Restorer.reference_check``) is applied by :class:`~.restorer.Restorer` with
        :meth:`reference_scores`, whose match of the same inputs may be passed as
        ``matched`` to save computing it again.
        """
        if blurry.shape != reference.shape:
            raise ValueError(f"blurry {tuple(blurry.shape)} and reference "
                             f"{tuple(reference.shape)} must have the same shape")
        h, w = blurry.shape[-2:]
        blurry, reference = self._pad(blurry, reference)
        x1 = self.enc1(self.head(blurry))
        x2 = self.enc2(self.sffm2(self.down1(x1), _resize(blurry, 0.5)))
        x3 = self.enc3(self.sffm3(self.down2(x2), _resize(blurry, 0.25)))
        found = matched if matched is not None else self.match(blurry, reference, in_place)
        f1 = self.ref1(reference)
        f2 = self.ref2(f1)
        f3 = self.ref3(f2)
        t3 = self.ream3(x3, f3, found)
        t2 = self.ream2(x2, f2, found)
        t1 = self.ream1(x1, f1, found)
        d3 = self.dec3(t3)
        d2 = self.dec2(self.merge2(torch.cat([self.up3(d3), t2], dim=1)))
        d1 = self.dec1(self.merge1(torch.cat([self.up2(d2), t1], dim=1)))
        out = blurry + self.tail(d1)
        return out[..., :h, :w]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
