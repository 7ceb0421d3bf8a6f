"""Basic building blocks: 3x3 convolutions, ResBlocks and ResBlock groups."""

from __future__ import annotations

from torch import Tensor, nn


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)


class ResBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3 with an identity skip (the paper's modified ResBlock)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(channels, channels), nn.ReLU(inplace=True), conv3x3(channels, channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResGroup(nn.Sequential):
    """A ResBlock group (RG): ``n`` ResBlocks in a row."""

    def __init__(self, channels: int, n: int) -> None:
        super().__init__(*(ResBlock(channels) for _ in range(n)))


class ConvGroup(nn.Sequential):
    """One group of the shallow reference encoder: two convs with ReLU, the first may stride."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__(
            conv3x3(in_ch, out_ch, stride),
            nn.ReLU(inplace=True),
            conv3x3(out_ch, out_ch),
            nn.ReLU(inplace=True),
        )
