"""The shared matching encoder phi: VGG19-style layers up to relu3_1 (1/4 resolution).

The paper uses a pretrained VGG. Weights cannot be downloaded at run time, so phi is
trained end to end; a user who has torchvision VGG19 weights on disk can initialise from
them with :func:`load_vgg19_weights` (a safetensors file; only for the paper widths
64/128/256).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG19_CONV_INDICES = (0, 2, 5, 7, 10)


class MatchingEncoder(nn.Module):
    """conv-conv-pool-conv-conv-pool-conv, laid out like ``vgg19.features[:12]``."""

    def __init__(self, widths: tuple[int, int, int]) -> None:
        super().__init__()
        c1, c2, c3 = widths
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c1, c1, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: Tensor) -> Tensor:
        return self.features((image - self.mean) / self.std)


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    """The tensors of a safetensors file; a pickled ``.pth`` is refused, not unpickled."""
    from .weights import read_safetensors  # its module builds models: imported when needed

    if path.suffix.lower() != ".safetensors":
        raise UserError(f"VGG19 weights must be a .safetensors file, not {path.name}: nothing "
                        "is unpickled (convert torchvision's .pth with safetensors.torch."
                        "save_file where you trust it)")
    return read_safetensors(path, "", "VGG19 state dict")[0]


def load_vgg19_weights(encoder: MatchingEncoder, path: str | Path) -> None:
    """Initialise ``encoder`` from a torchvision VGG19 state dict saved as safetensors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"VGG19 weights not found: {path}")
    state = _read_state_dict(path)
    own = encoder.features
    for index in VGG19_CONV_INDICES:
        for part in ("weight", "bias"):
            key = f"features.{index}.{part}"
            if key not in state:
                raise UserError(f"{path} is not a torchvision VGG19 state dict (missing {key})")
            target = getattr(own[index], part)
            if tuple(state[key].shape) != tuple(target.shape):
                raise UserError(
                    f"VGG19 weight {key} has shape {tuple(state[key].shape)}, the matching "
                    f"encoder needs {tuple(target.shape)} (use the paper widths 64/128/256)"
                )
            with torch.no_grad():
                target.copy_(state[key])
