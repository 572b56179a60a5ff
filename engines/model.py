"""The LipForensics network (Haliassos et al., CVPR 2021), split into its two stages.

::

    mouth crops B x 1 x T x 88 x 88
      -> FrameEncoder: 3D front end (5x7x7 conv, BN, PReLU, max pool) + ResNet-18 trunk
      -> per-frame features B x T x 512
      -> TemporalHead: multi-scale TCN (4 blocks, kernels 3/5/7) + mean over time + Linear
      -> one logit per clip (fake if large; no sigmoid inside)

Module and attribute names follow the authors' checkpoint, so ``LipForensics().state_dict()``
has exactly the keys and shapes of ``lipforensics_ff.pth`` (``trunk.*``, ``frontend3D.*``,
``tcn.*``, in that order) and that file loads with ``strict=True``.

Frame-once encoding: the front end's only temporal operator is a convolution of kernel 5
with zero padding 2, so frame *i*'s feature depends on frames i-2..i+2 alone.
:meth:`FrameEncoder.encode_frames` computes it from those five frames (missing neighbours as
zeros, which is the padding); :mod:`engines.frames` names and builds such inputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engines.method import FRAME_CONTEXT


@dataclass(frozen=True)
class ModelConfig:
    """Widths of the network; the defaults are the paper's (35,990,785 parameters).

    Attributes:
        frontend_channels: output channels of the 3D front end.
        trunk_widths: widths of the four ResNet-18 layers; the last is the feature size.
        tcn_hidden: channels of each TCN branch.
        tcn_kernels: kernel size of each TCN branch (one branch per kernel).
        tcn_levels: TCN blocks; block i has dilation 2**i.
        dropout: dropout after each TCN stage (training only).
        num_outputs: logits per clip.
    """

    frontend_channels: int = 64
    trunk_widths: tuple[int, ...] = (64, 128, 256, 512)
    tcn_hidden: int = 256
    tcn_kernels: tuple[int, ...] = (3, 5, 7)
    tcn_levels: int = 4
    dropout: float = 0.2
    num_outputs: int = 1

    def __post_init__(self) -> None:
        # lists from JSON or a checkpoint become tuples, so configs compare and hash
        object.__setattr__(self, "trunk_widths", tuple(self.trunk_widths))
        object.__setattr__(self, "tcn_kernels", tuple(self.tcn_kernels))

    @property
    def feature_dim(self) -> int:
        """Size of one frame's feature (the last trunk width)."""
        return self.trunk_widths[-1]

    @property
    def tcn_width(self) -> int:
        """Channels after concatenating the TCN branches (768 in the paper)."""
        return self.tcn_hidden * len(self.tcn_kernels)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready form (stored in our checkpoints)."""
        data = asdict(self)
        data["trunk_widths"] = list(self.trunk_widths)
        data["tcn_kernels"] = list(self.tcn_kernels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; raises ``TypeError`` on unknown fields."""
        return cls(**data)


# --- front end and ResNet-18 trunk -------------------------------------------------------


def frontend_3d(channels: int) -> nn.Sequential:
    """Conv3d 5x7x7 (stride 1,2,2) -> BN -> PReLU -> MaxPool 1x3x3 (stride 1,2,2): 88 -> 22."""
    return nn.Sequential(
        nn.Conv3d(1, channels, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
        nn.BatchNorm3d(channels),
        nn.PReLU(channels),
        nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
    )


class BasicBlock(nn.Module):
    """ResNet basic block with per-channel PReLU: conv-BN-PReLU-conv-BN, + shortcut, PReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        # attribute order = the checkpoint's key order (relu2 is registered before conv2)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.PReLU(planes)
        self.relu2 = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu2(out + shortcut)


class ResNetTrunk(nn.Module):
    """ResNet-18 without its stem: four layers of two blocks, then global average pooling."""

    def __init__(self, in_planes: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        for index, (planes, stride) in enumerate(zip(widths, (1, 2, 2, 2), strict=True)):
            layer = nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes))
            self.add_module(f"layer{index + 1}", layer)
            in_planes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, 22, 22) -> (N, widths[-1])."""
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


class FrameEncoder(nn.Module):
    """3D front end + ResNet-18 trunk: one feature per frame (the lipreading feature extractor)."""

    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.trunk = ResNetTrunk(config.frontend_channels, config.trunk_widths)
        self.frontend3D = frontend_3d(config.frontend_channels)

    def forward(self, clips: Tensor) -> Tensor:
        """(B, 1, T, 88, 88) normalised crops -> (B, T, D) features."""
        batch, frames = clips.shape[0], clips.shape[2]
        x = self.frontend3D(clips)  # B x C x T x 22 x 22
        x = x.transpose(1, 2).flatten(0, 1)  # fold time into batch: (B*T) x C x 22 x 22
        return self.trunk(x).view(batch, frames, -1)

    def encode_frames(self, windows: Tensor) -> Tensor:
        """(N, 1, 5, 88, 88) five-frame windows -> (N, D): the feature of each centre frame.

        Equals the centre frame's row of :meth:`forward` on those five frames. The front end's
        convolution runs for the centre frame only: with no temporal padding, a 5x7x7 kernel
        over five frames is a 7x7 2D convolution with the five frames as input channels.
        """
        if windows.shape[1:3] != (1, 2 * FRAME_CONTEXT + 1):
            raise ValueError(f"expected (N, 1, 5, H, W) windows, got {tuple(windows.shape)}")
        conv, batchnorm, prelu, maxpool = self.frontend3D
        x = F.conv2d(
            windows.squeeze(1),
            conv.weight.squeeze(1),
            stride=conv.stride[1:],
            padding=conv.padding[1:],
        )
        x = maxpool(prelu(batchnorm(x.unsqueeze(2))))  # N x C x 1 x 22 x 22
        return self.trunk(x.squeeze(2))


# --- multi-scale temporal convolutional network -----------------------------------------


class SymmetricChomp(nn.Module):
    """Drop ``size // 2`` steps from each end (undoes the extra padding; non-causal)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.half = size // 2

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, self.half : x.shape[2] - self.half]


class TemporalBranch(nn.Module):
    """One TCN branch: dilated Conv1d (padding (k-1)*d) -> BN -> symmetric chomp -> PReLU."""

    def __init__(self, in_channels: int, channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        padding = (kernel - 1) * dilation
        self.conv = nn.Conv1d(in_channels, channels, kernel, dilation=dilation, padding=padding)
        self.batchnorm = nn.BatchNorm1d(channels)
        self.chomp = SymmetricChomp(padding)
        self.non_lin = nn.PReLU(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.non_lin(self.chomp(self.batchnorm(self.conv(x))))


class MultibranchBlock(nn.Module):
    """Two stages of parallel branches (``cbcr{stage}_{branch}``), each stage concatenated and
    followed by dropout; a 1x1 conv residual (in every block) and a final PReLU."""

    def __init__(self, in_channels: int, config: ModelConfig, dilation: int) -> None:
        super().__init__()
        self.num_branches = len(config.tcn_kernels)
        for stage, stage_in in enumerate((in_channels, config.tcn_width)):
            for branch, kernel in enumerate(config.tcn_kernels):
                module = TemporalBranch(stage_in, config.tcn_hidden, kernel, dilation)
                self.add_module(f"cbcr{stage}_{branch}", module)
        self.dropout = nn.Dropout(config.dropout)
        self.downsample = nn.Conv1d(in_channels, config.tcn_width, 1)
        self.relu_final = nn.PReLU(config.tcn_width)

    def _stage(self, x: Tensor, stage: int) -> Tensor:
        branches = [getattr(self, f"cbcr{stage}_{b}")(x) for b in range(self.num_branches)]
        return self.dropout(torch.cat(branches, dim=1))

    def forward(self, x: Tensor) -> Tensor:
        out = self._stage(self._stage(x, 0), 1)
        return self.relu_final(out + self.downsample(x))


class MultibranchTCN(nn.Module):
    """``tcn_levels`` multi-branch blocks with dilations 1, 2, 4, 8: (B, D, T) -> (B, 768, T)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        blocks = []
        in_channels = config.feature_dim
        for level in range(config.tcn_levels):
            blocks.append(MultibranchBlock(in_channels, config, dilation=2**level))
            in_channels = config.tcn_width
        self.network = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)


class TemporalHead(nn.Module):
    """MS-TCN over the frame features, mean over time, Linear: (B, T, D) -> (B,) logits.

    With ``num_outputs > 1`` the result is (B, num_outputs).
    """

    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.mb_ms_tcn = MultibranchTCN(config)
        self.tcn_output = nn.Linear(config.tcn_width, config.num_outputs)

    def forward(self, features: Tensor) -> Tensor:
        x = self.mb_ms_tcn(features.transpose(1, 2))  # B x 768 x T
        logits = self.tcn_output(x.mean(dim=2))
        return logits.squeeze(1) if logits.shape[1] == 1 else logits


# --- the whole network -------------------------------------------------------------------


class LipForensics(nn.Module):
    """FrameEncoder then TemporalHead: (B, 1, T, 88, 88) normalised crops -> (B,) logits.

    ``model.encoder`` and ``model.head`` are the two stages as modules of their own, sharing
    this model's parameters (export or run them separately). The state dict keeps the
    authors' flat layout: ``trunk.*``, ``frontend3D.*`` and ``tcn.*`` (the head).
    """

    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        encoder = FrameEncoder(config)
        self.config = config
        self.trunk = encoder.trunk
        self.frontend3D = encoder.frontend3D
        self.tcn = TemporalHead(config)
        # a view over trunk + frontend3D, kept out of the module tree so keys stay flat
        object.__setattr__(self, "_encoder", encoder)

    @property
    def encoder(self) -> FrameEncoder:
        """The per-frame stage (shares ``trunk`` and ``frontend3D`` with this model)."""
        return self._encoder

    @property
    def head(self) -> TemporalHead:
        """The temporal stage (the ``tcn`` sub-module itself)."""
        return self.tcn

    def train(self, mode: bool = True) -> LipForensics:
        """Set training mode on the model and on the encoder view."""
        super().train(mode)
        self._encoder.training = mode
        return self

    def forward(self, clips: Tensor) -> Tensor:
        return self.head(self.encoder(clips))


def value_count(config: ModelConfig) -> int:
    """How many values (parameters and buffers) a network of these widths holds, counted on
    the meta device: nothing is allocated."""
    with torch.device("meta"):
        return sum(t.numel() for t in LipForensics(config).state_dict().values())
