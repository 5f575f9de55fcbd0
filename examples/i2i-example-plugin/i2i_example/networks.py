"""The plugin's generator, imported only when a run or ``i2i describe`` first needs it."""

from torch import nn


class TinySeparable(nn.Module):
    """A light generator: depthwise-separable residual blocks, for quick experiments."""

    size_multiple = 1

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 32, blocks: int = 4):
        super().__init__()

        def separable(c: int) -> nn.Module:
            return nn.Sequential(
                nn.Conv2d(c, c, 3, padding=1, groups=c),
                nn.Conv2d(c, c, 1),
                nn.InstanceNorm2d(c),
                nn.ReLU(True),
            )

        self.stem = nn.Conv2d(in_channels, ngf, 3, padding=1)
        self.blocks = nn.ModuleList(separable(ngf) for _ in range(blocks))
        self.head = nn.Sequential(nn.Conv2d(ngf, out_channels, 3, padding=1), nn.Tanh())

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = x + block(x)
        return self.head(x)
