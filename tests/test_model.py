"""The network: checkpoint layout, an independent check against the spec, frame-once encoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engines.frames import five_frame_inputs, window_keys
from engines.method import normalise_crops
from engines.model import LipForensics, ModelConfig
from tests.live_support import NARROW

DATA = Path(__file__).parent / "data"


def randomise(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights everywhere, including BN statistics and per-channel PReLU slopes."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            shape = tensor.shape
            if name.endswith("running_var"):
                value = torch.rand(shape, generator=generator) + 0.5
            elif tensor.dim() == 1 and "weight" in name:  # BN scale or PReLU slope
                value = torch.rand(shape, generator=generator) * 0.5 + 0.25
            elif tensor.dim() == 1:  # biases and running means
                value = torch.randn(shape, generator=generator) * 0.1
            elif tensor.dim() == 2:  # the linear head: logits of many units, a confident detector
                value = torch.randn(shape, generator=generator)
            else:  # conv / linear weights, He-scaled
                fan_in = tensor[0].numel()
                value = torch.randn(shape, generator=generator) * (2.0 / fan_in) ** 0.5
            tensor.copy_(value)
    return model.eval()


@pytest.fixture(scope="session")
def paper_model() -> LipForensics:
    return randomise(LipForensics(), seed=0)


@pytest.fixture(scope="session")
def clips() -> torch.Tensor:
    """Two normalised 25-frame clips made from random uint8 crops."""
    crops = np.random.default_rng(1).integers(0, 256, (50, 96, 96), dtype=np.uint8)
    return torch.from_numpy(normalise_crops(crops)).view(2, 1, 25, 88, 88)


def spec_logits(sd: dict[str, torch.Tensor], x: torch.Tensor, kernels=(3, 5, 7)) -> torch.Tensor:
    """The network written straight from docs/lipforensics.md with torch.nn.functional."""

    def bn(y, key):
        return F.batch_norm(
            y, sd[f"{key}.running_mean"], sd[f"{key}.running_var"],
            sd[f"{key}.weight"], sd[f"{key}.bias"], training=False, eps=1e-5,
        )  # fmt: skip

    def prelu(y, key):
        return F.prelu(y, sd[f"{key}.weight"])

    # 3D front end, then time folded into the batch
    y = F.conv3d(x, sd["frontend3D.0.weight"], stride=(1, 2, 2), padding=(2, 3, 3))
    y = prelu(bn(y, "frontend3D.1"), "frontend3D.2")
    y = F.max_pool3d(y, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
    batch, channels, frames = y.shape[:3]
    y = y.transpose(1, 2).reshape(batch * frames, channels, *y.shape[3:])
    # ResNet-18 trunk
    for layer, first_stride in zip((1, 2, 3, 4), (1, 2, 2, 2), strict=True):
        for block in (0, 1):
            key = f"trunk.layer{layer}.{block}"
            stride = first_stride if block == 0 else 1
            out = F.conv2d(y, sd[f"{key}.conv1.weight"], stride=stride, padding=1)
            out = prelu(bn(out, f"{key}.bn1"), f"{key}.relu1")
            out = bn(F.conv2d(out, sd[f"{key}.conv2.weight"], padding=1), f"{key}.bn2")
            if f"{key}.downsample.0.weight" in sd:
                y = F.conv2d(y, sd[f"{key}.downsample.0.weight"], stride=stride)
                y = bn(y, f"{key}.downsample.1")
            y = prelu(out + y, f"{key}.relu2")
    y = y.mean(dim=(2, 3)).reshape(batch, frames, -1).transpose(1, 2)  # B x 512 x T
    # MS-TCN: 4 blocks, dilation 2^i, branches k = 3, 5, 7, symmetric chomp, 1x1 residual
    for level in range(4):
        dilation, key = 2**level, f"tcn.mb_ms_tcn.network.{level}"
        h = y
        for stage in (0, 1):
            branches = []
            for branch, k in enumerate(kernels):
                bkey, pad = f"{key}.cbcr{stage}_{branch}", (k - 1) * dilation
                z = F.conv1d(h, sd[f"{bkey}.conv.weight"], sd[f"{bkey}.conv.bias"],
                             dilation=dilation, padding=pad)  # fmt: skip
                z = bn(z, f"{bkey}.batchnorm")[:, :, pad // 2 : -(pad // 2)]
                branches.append(prelu(z, f"{bkey}.non_lin"))
            h = torch.cat(branches, dim=1)
        residual = F.conv1d(y, sd[f"{key}.downsample.weight"], sd[f"{key}.downsample.bias"])
        y = prelu(h + residual, f"{key}.relu_final")
    # temporal mean, then the linear head
    return F.linear(y.mean(dim=2), sd["tcn.tcn_output.weight"], sd["tcn.tcn_output.bias"])[:, 0]


def test_state_dict_matches_the_authors_checkpoint_layout(paper_model):
    expected = json.loads((DATA / "lipforensics_state_dict.json").read_text())
    actual = [[key, list(value.shape)] for key, value in paper_model.state_dict().items()]
    assert actual == expected


def test_default_config_has_the_papers_parameter_count(paper_model):
    assert sum(p.numel() for p in paper_model.parameters()) == 35_990_785
    assert sum(p.numel() for p in paper_model.frontend3D.parameters()) == 15_872
    assert sum(p.numel() for p in paper_model.trunk.parameters()) == 11_170_816


def test_every_activation_is_a_per_channel_prelu(paper_model):
    activations = [m for m in paper_model.modules() if isinstance(m, torch.nn.PReLU)]
    assert len(activations) == 1 + 16 + 4 * 7  # front end, trunk, TCN (6 branches + final)
    assert all(m.num_parameters > 1 for m in activations)
    assert not any(isinstance(m, torch.nn.ReLU) for m in paper_model.modules())


def test_network_equals_the_spec_written_with_functional_ops(paper_model, clips):
    with torch.no_grad():
        expected = spec_logits(paper_model.state_dict(), clips)
        assert torch.allclose(paper_model(clips), expected, rtol=1e-5, atol=0)
        # the two stages run separately give the same logits
        split = paper_model.head(paper_model.encoder(clips))
    assert torch.allclose(split, expected, rtol=1e-5, atol=0)
    assert abs(expected[0] - expected[1]) > 1e-3


@pytest.fixture(scope="session")
def narrow_double() -> LipForensics:
    return randomise(LipForensics(NARROW), seed=2).double()


def test_narrow_config_equals_the_spec_to_float64_rounding(narrow_double, clips):
    model, clips = narrow_double, clips.double()
    with torch.no_grad():
        logits, expected = model(clips), spec_logits(model.state_dict(), clips)
    assert logits.shape == (2,)
    assert torch.allclose(logits, expected, rtol=1e-12, atol=0)
    assert model.encoder(clips).shape == (2, 25, NARROW.feature_dim)


def test_narrow_config_fits_a_small_file():
    state = LipForensics(NARROW).state_dict()
    assert sum(t.numel() * t.element_size() for t in state.values()) < 10_000_000


def frame_once_logits(model: LipForensics, clips: torch.Tensor) -> torch.Tensor:
    """Encode every frame of every clip from its own five-frame window, then the head."""
    keys = window_keys(0, clips.shape[2])
    features = [
        model.encoder.encode_frames(
            torch.from_numpy(five_frame_inputs(clip[0].numpy(), keys, dtype=clip.numpy().dtype))
        )
        for clip in clips
    ]
    return model.head(torch.stack(features))


def test_logit_from_frame_once_features_equals_the_whole_clip(paper_model, clips):
    with torch.no_grad():
        whole, once = paper_model(clips), frame_once_logits(paper_model, clips)
    assert ((once - whole).abs() / whole.abs()).max().item() <= 1e-5


def test_frame_once_is_exact_in_float64(narrow_double, clips):
    clips = clips.double()
    with torch.no_grad():
        whole, once = narrow_double(clips), frame_once_logits(narrow_double, clips)
    assert ((once - whole).abs() / whole.abs()).max().item() <= 1e-12


def test_five_frame_inputs_pad_with_zeros_beyond_the_clip():
    clip = np.broadcast_to(np.arange(1, 7, dtype=np.float32)[:, None, None], (6, 88, 88))
    windows = five_frame_inputs(clip, window_keys(0, 6))
    assert windows.shape == (6, 1, 5, 88, 88) and windows.dtype == np.float32
    assert windows[0, 0, :, 0, 0].tolist() == [0, 0, 1, 2, 3]
    assert windows[3, 0, :, 0, 0].tolist() == [2, 3, 4, 5, 6]
    assert windows[5, 0, :, 0, 0].tolist() == [4, 5, 6, 0, 0]


def test_encode_frames_rejects_windows_that_are_not_five_frames(paper_model):
    with pytest.raises(ValueError, match="5, H, W"):
        paper_model.encoder.encode_frames(torch.zeros(1, 1, 3, 88, 88))


def test_stages_share_the_models_parameters():
    model = LipForensics(NARROW)
    assert model.encoder.trunk is model.trunk and model.head is model.tcn
    assert list(model.encoder.state_dict()) == [
        k for k in model.state_dict() if k.startswith(("trunk.", "frontend3D."))
    ]
    model.eval()
    assert not model.encoder.training
    model.train()
    assert model.encoder.training and model.encoder.frontend3D.training


def test_config_round_trips_through_a_plain_dict():
    data = json.loads(json.dumps(NARROW.to_dict()))
    assert ModelConfig.from_dict(data) == NARROW
    assert ModelConfig().feature_dim == 512 and ModelConfig().tcn_width == 768


def test_normalise_crops_centre_crops_and_standardises():
    crops = np.zeros((2, 96, 96), dtype=np.uint8)
    crops[:, 4:92, 4:92] = 255
    out = normalise_crops(crops)
    assert out.shape == (2, 88, 88) and out.dtype == np.float32
    assert np.allclose(out, (1.0 - 0.421) / 0.165)
    with pytest.raises(ValueError, match="uint8"):
        normalise_crops(crops.astype(np.float32))
