"""The confidence-refiner experiment (transfer_net.py): ``python -m pytest tools/experiments``."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from transfer_net import (
    ConfidenceRefiner,
    load_refiner,
    refined_confidence,
    refined_transfer,
    save_refiner,
)

from refdeblur_video.refine.transfer import transfer_cues, transfer_reference


@pytest.fixture(scope="module")
def frames() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.random((160, 208, 3), dtype=np.float32), (0, 0), 1.2)
    sharp = big[8:152, 8:200]
    reference = big[5:149, 12:204]  # the scene moved by (3, -4)
    return {"soft": cv2.GaussianBlur(sharp, (0, 0), 1.5), "reference": reference}


def test_an_untrained_refiner_gives_the_hand_made_confidence(frames, tmp_path):
    cues = transfer_cues(frames["soft"], frames["reference"])
    fresh = ConfidenceRefiner().eval()
    assert np.allclose(refined_confidence(fresh, frames["soft"], cues), cues.confidence,
                       atol=2e-4)
    assert np.allclose(refined_transfer(frames["soft"], frames["reference"], fresh),
                       transfer_reference(frames["soft"], frames["reference"]), atol=1e-3)
    torch.manual_seed(0)
    for p in fresh.parameters():
        p.data.normal_(0, 0.3)
    changed = refined_confidence(fresh, frames["soft"], cues)
    assert np.abs(changed - cues.confidence).mean() > 0.01
    assert changed.min() >= 0 and changed.max() <= 1
    save_refiner(tmp_path / "r.safetensors", fresh)
    again = refined_confidence(load_refiner(tmp_path / "r.safetensors"), frames["soft"], cues)
    assert np.array_equal(again, changed)


def test_a_refiner_file_that_is_not_one_is_a_user_error(tmp_path):
    from refdeblur_video.errors import UserError

    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="not a safetensors"):
        load_refiner(tmp_path / "junk.safetensors")
