"""The temporal head as matrix products: the form it is exported in.

ONNX Runtime runs a ``Conv1d`` over a 25-step window as one skinny matrix product per window
(25 output columns), so the paper-size head cost 30 ms of CPU per window at any batch size
(``bench/engines.py``). Here every convolution of :class:`engines.model.TemporalHead` is a
``MatMul`` over the time axis instead: each stage of a multi-branch block gathers the
shifted copies of its input once, ``(B, T, taps * C)``, and each branch multiplies the slice
of taps it uses by its weights, BatchNorm folded in. Features stay ``(B, T, C)`` throughout,
so a batch of windows is a single product of ``B * T`` rows. The numbers are the same as the
module's up to float32 rounding (``tests/test_export.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engines.model import MultibranchBlock, TemporalBranch, TemporalHead


def _prelu_last(x: Tensor, slope: Tensor) -> Tensor:
    """PReLU with one slope per channel of the last axis."""
    return torch.where(x >= 0, x, x * slope)


def _constant(tensor: Tensor) -> nn.Parameter:
    """A detached copy of ``tensor`` as a frozen parameter."""
    return nn.Parameter(tensor.detach().clone(), requires_grad=False)


class _FoldedBranch(nn.Module):
    """One :class:`TemporalBranch` (conv, BatchNorm, chomp, PReLU) as a ``MatMul``.

    The branch's padding ``(k - 1) * d`` followed by a chomp of half of it on each side is a
    centred convolution: output step ``t`` sees the input at ``t + (j - (k - 1) / 2) * d``.
    """

    def __init__(self, branch: TemporalBranch) -> None:
        super().__init__()
        conv, batchnorm = branch.conv, branch.batchnorm
        scale = batchnorm.weight / torch.sqrt(batchnorm.running_var + batchnorm.eps)
        weight = conv.weight * scale[:, None, None]  # C_out x C_in x k
        self.kernel = conv.kernel_size[0]
        # rows ordered tap by tap, each tap's C_in channels together: matches the gathered taps
        self.weight = _constant(weight.permute(2, 1, 0).reshape(-1, weight.shape[0]))
        self.bias = _constant((conv.bias - batchnorm.running_mean) * scale + batchnorm.bias)
        self.slope = _constant(branch.non_lin.weight)

    def forward(self, taps: Tensor, centre: int, channels: int) -> Tensor:
        first = (centre - (self.kernel - 1) // 2) * channels
        out = taps[:, :, first : first + self.kernel * channels] @ self.weight + self.bias
        return _prelu_last(out, self.slope)


class _FoldedStage(nn.Module):
    """The parallel branches of one stage over shared shifted copies of the input."""

    def __init__(self, branches: list[TemporalBranch], dilation: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(_FoldedBranch(b) for b in branches)
        self.dilation = dilation
        self.centre = (max(b.kernel for b in self.branches) - 1) // 2

    def forward(self, x: Tensor) -> Tensor:
        steps, channels = x.shape[1], x.shape[2]
        reach = self.centre * self.dilation
        padded = F.pad(x, (0, 0, reach, reach))
        taps = torch.cat(
            [
                padded[:, j * self.dilation : j * self.dilation + steps, :]
                for j in range(2 * self.centre + 1)
            ],
            dim=2,
        )
        return torch.cat([b(taps, self.centre, channels) for b in self.branches], dim=2)


class _FoldedBlock(nn.Module):
    """One :class:`MultibranchBlock`: two stages, the 1x1 residual and the final PReLU."""

    def __init__(self, block: MultibranchBlock, dilation: int) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            _FoldedStage(
                [getattr(block, f"cbcr{stage}_{b}") for b in range(block.num_branches)],
                dilation,
            )
            for stage in range(2)
        )
        self.residual_weight = _constant(block.downsample.weight[:, :, 0].t())
        self.residual_bias = _constant(block.downsample.bias)
        self.slope = _constant(block.relu_final.weight)

    def forward(self, x: Tensor) -> Tensor:
        out = self.stages[1](self.stages[0](x))
        return _prelu_last(out + x @ self.residual_weight + self.residual_bias, self.slope)


class MatMulHead(nn.Module):
    """``head`` (a :class:`TemporalHead` in eval mode) as matrix products: (B, T, D) -> (B,)
    logits, or (B, num_outputs) when it has several. A frozen copy: later changes to
    ``head``'s weights do not reach it."""

    def __init__(self, head: TemporalHead) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            _FoldedBlock(block, dilation=2**level)
            for level, block in enumerate(head.mb_ms_tcn.network)
        )
        self.output_weight = _constant(head.tcn_output.weight.t())
        self.output_bias = _constant(head.tcn_output.bias)

    def forward(self, features: Tensor) -> Tensor:
        x = features
        for block in self.blocks:
            x = block(x)
        logits = x.mean(dim=1) @ self.output_weight + self.output_bias
        return logits.squeeze(1) if logits.shape[1] == 1 else logits
