"""Several networks merged into one: its logit is the members' mean logit (the merged network
is an ordinary LipForensics network every engine loads), the ``ensemble`` command writes
the members side by side in one file that loads as that network, or refuses in one line,
and a damaged ensemble file is refused in one line."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from commands.cli import main
from engines.checkpoint import load_checkpoint, save_checkpoint, save_ensemble
from engines.ensemble import merged, merged_config
from engines.model import LipForensics, ModelConfig

SMALL = ModelConfig(frontend_channels=4, trunk_widths=(4, 4, 8, 8), tcn_hidden=4)
WIDER = replace(SMALL, frontend_channels=6, trunk_widths=(6, 8, 8, 12), tcn_hidden=5)


def random_network(config: ModelConfig, seed: int) -> LipForensics:
    """A network with every weight and BatchNorm statistic drawn at random (fresh statistics
    are 0 and 1, which would hide a channel mapped to the wrong place)."""
    torch.manual_seed(seed)
    network = LipForensics(config).eval()
    with torch.no_grad():
        for name, value in network.state_dict().items():
            if not value.dtype.is_floating_point:
                continue
            value.copy_(torch.randn_like(value) * 0.5)
            if name.endswith("running_var"):
                value.abs_().add_(0.5)
    return network


def clips(seed: int = 9) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randn(2, 1, 25, 88, 88)


def test_the_merged_network_scores_the_members_mean_logit() -> None:
    members = [random_network(SMALL, 1), random_network(WIDER, 2), random_network(SMALL, 3)]
    network = merged(members)
    x = clips()
    with torch.no_grad():
        expected = torch.stack([m(x) for m in members]).mean(dim=0)
        assert torch.allclose(network(x), expected, rtol=1e-4, atol=1e-4)
        # the frame features are the members' side by side
        features = torch.cat([m.encoder(x) for m in members], dim=2)
        assert torch.allclose(network.encoder(x), features, rtol=1e-4, atol=1e-4)
    assert network.config == replace(
        SMALL, frontend_channels=14, trunk_widths=(14, 16, 24, 28), tcn_hidden=13
    )


def test_networks_that_cannot_line_up_are_refused() -> None:
    with pytest.raises(ValueError, match="two or more"):
        merged_config([SMALL])
    with pytest.raises(ValueError, match="tcn_kernels"):
        merged_config([SMALL, replace(SMALL, tcn_kernels=(3, 5))])
    with pytest.raises(ValueError, match="tcn_levels"):
        merged_config([SMALL, replace(SMALL, tcn_levels=2)])


def test_the_command_writes_a_file_that_loads_as_the_ensemble(tmp_path, capsys) -> None:
    members = [random_network(SMALL, 4), random_network(WIDER, 5)]
    paths = [save_checkpoint(tmp_path / f"m{i}.pth", m) for i, m in enumerate(members)]
    out = tmp_path / "ensemble.pth"
    assert main(["ensemble", *map(str, paths), "--out", str(out)]) == 0
    assert "2 networks" in capsys.readouterr().out
    loaded = load_checkpoint(out)
    assert loaded.layout == "ensemble"
    assert loaded.config == merged_config([m.config for m in members])
    x = clips(3)
    with torch.no_grad():
        expected = (members[0](x) + members[1](x)) / 2
        assert torch.allclose(loaded.model(x), expected, rtol=1e-4, atol=1e-4)
    # the members side by side, not the merged network's zeros
    stored = torch.load(out, weights_only=True)["members"]
    values = sum(t.numel() for member in stored for t in member["model"].values())
    assert values == sum(t.numel() for m in members for t in m.state_dict().values())
    assert values < 0.6 * sum(t.numel() for t in loaded.model.state_dict().values())


def test_a_damaged_ensemble_file_is_refused_in_one_line(tmp_path) -> None:
    from errors import CheckpointError

    good = [random_network(SMALL, 4), random_network(SMALL, 5)]
    path = save_ensemble(tmp_path / "e.pth", good)
    payload = torch.load(path, weights_only=True)
    lame = random_network(replace(SMALL, tcn_levels=2), 6)
    cases = [
        ({"members": payload["members"][:1]}, "two or more networks"),
        ({"members": [payload["members"][0], {"model_state_dict": {}}]}, "member 2"),
        ({"members": [payload["members"][0], {"model": {}, "config": {"x": 1}}]}, "config"),
        ({"members": [*payload["members"], save_entry(lame)]}, "cannot be merged"),
    ]
    for damaged, message in cases:
        torch.save(damaged, path)
        with pytest.raises(CheckpointError, match=message) as raised:
            load_checkpoint(path)
        assert "\n" not in str(raised.value)
    broken = payload["members"][1]["model"]
    broken["tcn.tcn_output.bias"] = torch.full_like(broken["tcn.tcn_output.bias"], float("nan"))
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="NaN"):
        load_checkpoint(path)


def save_entry(network: LipForensics) -> dict[str, object]:
    """One member of an ensemble file, as ``save_ensemble`` writes it."""
    return {"model": network.state_dict(), "config": network.config.to_dict()}


def test_the_command_refuses_bad_input_in_one_line(tmp_path, capsys, monkeypatch) -> None:
    small = save_checkpoint(tmp_path / "small.pth", random_network(SMALL, 6))
    other = save_checkpoint(tmp_path / "other.pth", random_network(replace(SMALL, tcn_levels=2), 7))
    out = str(tmp_path / "out.pth")
    cases = [
        ([str(small)], "two or more"),
        ([str(small), str(tmp_path / "missing.pth")], "not found"),
        ([str(small), str(other)], "tcn_levels differ"),
        ([str(small), str(small), "--out", str(tmp_path / "no" / "x.pth")], "no folder"),
    ]
    for arguments, message in cases:
        if "--out" not in arguments:
            arguments = [*arguments, "--out", out]
        assert main(["ensemble", *arguments]) == 2
        error = capsys.readouterr().err
        assert message in error and len(error.strip().splitlines()) == 1
    monkeypatch.setattr("engines.checkpoint.MAX_PARAMETERS", 20_000)  # one member: 13,921
    assert main(["ensemble", str(small), str(small), "--out", out]) == 2
    assert "more than a weight file may" in capsys.readouterr().err
    assert not (tmp_path / "out.pth").exists()
