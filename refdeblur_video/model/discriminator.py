"""A small patch discriminator (critic) for the relativistic GAN loss."""

from __future__ import annotations

from torch import Tensor, nn


class PatchDiscriminator(nn.Module):
    """Strided convs with LeakyReLU, one critic value per patch (no sigmoid)."""

    def __init__(self, width: int = 32, layers: int = 4) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        ch = width
        for _ in range(layers - 1):
            blocks += [nn.Conv2d(ch, ch * 2, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            ch *= 2
        blocks.append(nn.Conv2d(ch, 1, 3, 1, 1))
        self.body = nn.Sequential(*blocks)

    def forward(self, image: Tensor) -> Tensor:
        return self.body(image * 2 - 1)
