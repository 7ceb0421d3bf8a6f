"""The contrastive matching loss for phi: its scores are the search's, and it teaches phi."""

import torch
import torch.nn.functional as F

from refdeblur_video.model import ModelConfig, RefDeblurNet
from refdeblur_video.model.inference import InferenceSettings
from refdeblur_video.model.matching import match_local
from refdeblur_video.training.match_loss import matching_loss, shifted, window_similarities


def test_window_scores_are_the_local_search_scores():
    torch.manual_seed(0)
    query, key = torch.randn(2, 1, 4, 14, 16).unbind(0)
    radius = 2
    scores = window_similarities(query, key, radius)
    found = match_local(query, key, radius)
    best, arg = scores.max(1)
    side = 2 * radius + 1
    dy, dx = arg // side - radius, arg % side - radius
    ys, xs = torch.meshgrid(torch.arange(14), torch.arange(16), indexing="ij")
    inner = (slice(None), slice(radius, -radius), slice(radius, -radius))
    assert torch.allclose(best[inner], found.confidence[:, 0][inner], atol=1e-5)
    assert torch.equal(((ys + dy) * 16 + xs + dx)[inner], found.index[inner])


def test_a_key_shifted_by_whole_cells_is_found_there():
    torch.manual_seed(1)
    features = torch.randn(1, 6, 16, 16)
    key = torch.roll(features, shifts=(1, -2), dims=(2, 3))
    scores = window_similarities(features, key, 3)
    arg = scores[..., 4:-4, 4:-4].argmax(1)
    assert torch.all(arg == (3 + 1) * 7 + 3 - 2)


def test_shifted_shifts_content_and_replicates_the_border():
    image = torch.arange(20.0).view(1, 1, 4, 5)
    out = shifted(image, 1, -2)
    assert torch.equal(out[0, 0, 1:, :3], image[0, 0, :-1, 2:])
    assert torch.equal(out[0, 0, 0, :3], image[0, 0, 0, 2:])


class _OracleNet:
    """Features that a moved copy matches exactly: a pooled image, and no softening."""

    @staticmethod
    def phi(image):
        return F.avg_pool2d(image, 4) - 0.5

    @staticmethod
    def soften(image):
        return image


def test_the_right_answer_is_the_move_of_the_key():
    for seed in range(4):
        sharp = _texture(seed)
        loss, accuracy = matching_loss(_OracleNet(), sharp, sharp, radius=3,
                                       generator=torch.Generator().manual_seed(seed))
        assert accuracy.item() > 0.9, seed


def _texture(seed: int, size: int = 64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(2, 3, size // 4, size // 4, generator=generator)
    return F.interpolate(noise, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def test_the_loss_teaches_phi_to_find_blurred_patches():
    torch.manual_seed(0)
    config = ModelConfig(name="tiny", channels=(8, 8, 16), n_resblocks=1,
                         ref_channels=(4, 8, 8), phi_channels=(8, 8, 16), sffm_hidden=(4, 4))
    net = RefDeblurNet(config, InferenceSettings(match_radius=3).matching)
    optimizer = torch.optim.Adam(net.phi.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    losses, rights = [], []
    for step in range(60):
        sharp = _texture(step % 4)
        blurry = F.avg_pool2d(F.pad(sharp, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        loss, right = matching_loss(net, blurry, sharp, radius=3, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        rights.append(right.item())
    assert sum(losses[-10:]) < 0.8 * sum(losses[:10])
    assert sum(rights[-10:]) > sum(rights[:10])
