"""Several LipForensics networks as one network of the same architecture: an exact ensemble.

Averaging the logits of networks trained apart is the one lever that has lifted the demo
detector's figures on strangers (docs/demo_detector.md); every engine (ONNX Runtime, INT8, TensorRT,
Triton) loads one :class:`~engines.model.LipForensics`. :func:`merged` builds that one:
its widths are the members' summed, each member keeps its own channels (the weights between
two members' channels are zero, so no member sees another's), and its output layer takes the
mean of the members' logits. Every layer of the network works per channel (BatchNorm,
per-channel PReLU, pooling) or is a convolution or linear map, so the merged network's logit
equals the members' mean logit, to float rounding.

The price is the zeros: a convolution between two widths that each doubled holds four times
the weights, so two members of one size are about four times the size of one, and
computing them takes about as long.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import torch

from engines.model import LipForensics, ModelConfig

#: what must be the same in every member for the channels to line up
SHARED_FIELDS = ("tcn_kernels", "tcn_levels", "num_outputs")

_TCN = r"tcn\.mb_ms_tcn\.network\.(\d+)\."
#: parameter name -> (space of its output channels, space of its input channels or None);
#: ``{}`` placeholders take the pattern's groups (see :func:`_spaces_of`)
_LAYOUT = (
    (r"frontend3D\.0\.weight", ("frontend", "input")),
    (r"frontend3D\.", ("frontend", None)),
    (r"trunk\.layer(\d)\.(\d)\.(?:conv1|downsample\.0)\.weight", ("layer{0}", "block_in")),
    (r"trunk\.layer(\d)\.\d\.conv2\.weight", ("layer{0}", "layer{0}")),
    (r"trunk\.layer(\d)\.", ("layer{0}", None)),
    (_TCN + r"cbcr(\d)_\d+\.conv\.weight", ("branch", "stage_in")),
    (_TCN + r"cbcr\d_\d+\.", ("branch", None)),
    (_TCN + r"downsample\.weight", ("tcn", "level_in")),
    (_TCN + r"(?:downsample\.bias|relu_final\.weight)", ("tcn", None)),
    (r"tcn\.tcn_output\.weight", ("output", "tcn")),
    (r"tcn\.tcn_output\.bias", ("output", None)),
)


def merged_config(configs: Sequence[ModelConfig]) -> ModelConfig:
    """The widths of the network holding every one of ``configs`` side by side; raises
    ``ValueError`` when their kernels, levels or outputs differ, or fewer than two are given."""
    if len(configs) < 2:
        raise ValueError("an ensemble takes two or more networks")
    for name in SHARED_FIELDS:
        if len({getattr(c, name) for c in configs}) > 1:
            raise ValueError(f"cannot merge networks whose {name} differ")
    return replace(
        configs[0],
        frontend_channels=sum(c.frontend_channels for c in configs),
        trunk_widths=tuple(sum(w) for w in zip(*(c.trunk_widths for c in configs), strict=True)),
        tcn_hidden=sum(c.tcn_hidden for c in configs),
    )


def merged(models: Sequence[LipForensics]) -> LipForensics:
    """One network whose logit is the mean of ``models``' logits (see the module
    docstring), in eval mode; raises ``ValueError`` as :func:`merged_config` does."""
    configs = [m.config for m in models]
    network = LipForensics(merged_config(configs)).eval()
    state = {k: torch.zeros_like(v) for k, v in network.state_dict().items()}
    spaces = _member_channels(configs)
    for member, model in enumerate(models):
        for name, value in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            out_space, in_space = _spaces_of(name)
            rows = spaces[out_space][member]
            if out_space == "output":  # the mean: each member adds its share
                value = value / len(models)
            if in_space is None:
                state[name][rows] += value
            else:
                columns = spaces[in_space][member]
                state[name][rows[:, None], columns[None, :]] += value
    network.load_state_dict(state)
    return network


def _spaces_of(name: str) -> tuple[str, str | None]:
    """(output space, input space) of the parameter ``name`` (keys of
    :func:`_member_channels`)."""
    for pattern, (out_space, in_space) in _LAYOUT:
        found = re.match(pattern, name)
        if found is None:
            continue
        groups = found.groups()
        if in_space == "block_in":  # a block's first convolution reads the layer before
            layer, block = int(groups[0]), int(groups[1])
            in_space = (
                f"layer{layer}" if block else ("frontend" if layer == 1 else f"layer{layer - 1}")
            )
        elif in_space == "stage_in":  # stage 0 reads the level's input, stage 1 the branches
            level, stage = int(groups[0]), int(groups[1])
            in_space = "tcn" if stage or level else "layer4"
        elif in_space == "level_in":
            in_space = "tcn" if int(groups[0]) else "layer4"
        return out_space.format(*groups), in_space and in_space.format(*groups)
    raise ValueError(f"unexpected parameter {name!r}")


def _member_channels(configs: Sequence[ModelConfig]) -> dict[str, list[torch.Tensor]]:
    """Per channel space of the merged network, each member's channels in it: side by side
    in the front end, the trunk and each TCN branch; after the branches are concatenated,
    member ``m``'s channels of every branch; the input and the output are shared."""
    spaces = {
        "frontend": _side_by_side([c.frontend_channels for c in configs]),
        "branch": _side_by_side([c.tcn_hidden for c in configs]),
        "input": [torch.arange(1)] * len(configs),
        "output": [torch.arange(configs[0].num_outputs)] * len(configs),
    }
    for layer, widths in enumerate(zip(*(c.trunk_widths for c in configs), strict=True)):
        spaces[f"layer{layer + 1}"] = _side_by_side(list(widths))
    total = sum(c.tcn_hidden for c in configs)
    branches = range(len(configs[0].tcn_kernels))
    spaces["tcn"] = [torch.cat([b * total + own for b in branches]) for own in spaces["branch"]]
    return spaces


def _side_by_side(widths: list[int]) -> list[torch.Tensor]:
    """Each member's channels when members of these ``widths`` sit one after another."""
    starts = [sum(widths[:m]) for m in range(len(widths))]
    return [torch.arange(start, start + width) for start, width in zip(starts, widths, strict=True)]
