"""Load and save LipForensics weights; every failure is a one-line :class:`CheckpointError`.

One loader reads every layout we meet:

- the authors' ``lipforensics_ff.pth``: ``{"model": state_dict}``;
- ours (fine-tuned models): the same, plus ``"config"`` (a :class:`ModelConfig` as a dict)
  when the widths differ from the paper's, so narrow models load too;
- the lipreading (LRW) checkpoints: ``{"model_state_dict": state_dict}`` with a 500-word head;
  the encoder and TCN load, the 1-logit head starts from random weights (and we say so);
- a bare state dict (``torch.save(model.state_dict(), path)``);
- an ensemble (``run_stream.py ensemble``): ``{"members": [{"model": ..., "config": ...},
  ...]}``, two or more of our networks kept side by side (no zeros between them), merged on
  load into the one network that scores their mean logit (:mod:`engines.ensemble`).

Files are read with ``torch.load(weights_only=True)`` only: tensors, numbers, strings and
containers, never arbitrary Python objects (a pickle can run code when it is loaded). A file
that needs more is refused in one line; for an old file *you trust* (e.g. one that saved
training arguments), ``LIPFORENSICS_TRUST_CHECKPOINTS=1`` in the environment allows a full
load. Weights that are NaN or infinite are refused too.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from engines.model import LipForensics, ModelConfig, value_count
from errors import CheckpointError

EXPECTED = "a LipForensics checkpoint such as lipforensics_ff.pth"
HEAD_KEYS = ("tcn.tcn_output.weight", "tcn.tcn_output.bias")
#: the environment variable that allows a full (unsafe) unpickling of trusted old files.
TRUST_VARIABLE = "LIPFORENSICS_TRUST_CHECKPOINTS"
#: a checkpoint's ``config`` entry: field -> (type, lowest, highest, list length or None).
CONFIG_LIMITS: dict[
    object, tuple[type | tuple[type, ...], float, float, tuple[int, int] | None]
] = {
    "frontend_channels": (int, 1, 1024, None),
    "trunk_widths": (int, 1, 2048, (4, 4)),
    "tcn_hidden": (int, 1, 2048, None),
    "tcn_kernels": (int, 1, 25, (1, 8)),
    "tcn_levels": (int, 1, 8, None),
    "dropout": ((int, float), 0, 0.99, None),
    "num_outputs": (int, 1, 1000, None),
}
#: the most values (parameters and buffers) a network may have: three times the paper's.
MAX_PARAMETERS = 108_000_000


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A network built from a weight file, in eval mode on the CPU.

    Attributes:
        model: the network with the file's weights.
        path: the file it came from.
        layout: ``"lipforensics"`` (``{"model": ...}``, ours included), ``"lipreading"``
            (``{"model_state_dict": ...}``), ``"state_dict"`` (bare) or ``"ensemble"``
            (``{"members": [...]}``).
        notes: one-line remarks the user should see (e.g. a re-initialised head).
    """

    model: LipForensics
    path: Path
    layout: str
    notes: tuple[str, ...] = ()

    @property
    def config(self) -> ModelConfig:
        """The network's widths."""
        return self.model.config


def load_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Build the network described by ``path`` and load its weights (strictly, except the
    lipreading head). Raises :class:`CheckpointError` with a one-line reason."""
    path = Path(path)
    payload, notes = _read(path)
    if isinstance(payload, Mapping) and "members" in payload:
        return LoadedCheckpoint(_merged_members(path, payload["members"]), path, "ensemble")
    state_dict, layout, config = _unpack(path, payload)
    return _network(path, state_dict, layout, config, notes)


def _network(
    path: Path,
    state_dict: Mapping[str, object],
    layout: str,
    config: ModelConfig,
    notes: list[str],
) -> LoadedCheckpoint:
    """The network of ``config`` with ``state_dict`` loaded, after every check."""
    _check_size(path, config)
    with torch.device("meta"):  # shapes only: nothing allocated before the checks
        shapes = LipForensics(config)
    if layout == "lipreading" and _head_shape(state_dict) != _head_shape(shapes.state_dict()):
        state_dict = {k: v for k, v in state_dict.items() if k not in HEAD_KEYS}
        ignore = HEAD_KEYS
        notes.append(
            f"{path.name} is a lipreading checkpoint: loaded the encoder and temporal "
            "convolutions; the 1-logit head is newly initialised (fine-tune before use)"
        )
    else:
        ignore = ()
    _check_fits(path, state_dict, shapes, ignore)
    _check_finite(path, state_dict)
    model = LipForensics(config)
    model.load_state_dict(state_dict, strict=not ignore)
    return LoadedCheckpoint(model.eval(), path, layout, tuple(notes))


def _merged_members(path: Path, members: object) -> LipForensics:
    """The one network of an ensemble file's ``members`` (each checked as a file of its
    own would be)."""
    from engines.ensemble import merged, merged_config

    if not isinstance(members, list) or len(members) < 2:
        raise CheckpointError(f"{path}: 'members' must list two or more networks")
    models = []
    for index, member in enumerate(members, 1):
        state_dict, layout, config = _unpack(path, member)
        if layout != "lipforensics":
            raise CheckpointError(f"{path}: member {index} has no state dict under 'model'")
        models.append(_network(path, state_dict, layout, config, []).model)
    try:
        _check_size(path, merged_config([m.config for m in models]))
    except ValueError as error:
        raise CheckpointError(f"{path}: its members cannot be merged: {error}") from None
    return merged(models).eval()


def save_checkpoint(path: str | Path, model: LipForensics) -> Path:
    """Write ``{"model": state_dict}`` (the authors' layout), plus ``"config"`` when the
    model is narrower than the paper's. Written to a temporary file first, then renamed."""
    return _write(path, _entry(model))


def save_ensemble(path: str | Path, models: list[LipForensics]) -> Path:
    """Write ``models`` side by side as one ensemble file (``{"members": [...]}``, each as
    :func:`save_checkpoint` writes one), which :func:`load_checkpoint` merges on load."""
    return _write(path, {"members": [_entry(model) for model in models]})


def _entry(model: LipForensics) -> dict[str, object]:
    """``{"model": state_dict}``, plus ``"config"`` unless the widths are the paper's."""
    entry: dict[str, object] = {"model": model.state_dict()}
    if model.config != ModelConfig():
        entry["config"] = model.config.to_dict()
    return entry


def _write(path: str | Path, payload: dict[str, object]) -> Path:
    """``torch.save`` to a temporary file first, then renamed."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    partial.replace(path)
    return path


def require_file(path: Path) -> None:
    """Raise CheckpointError, in one line, unless a weight file is at ``path``."""
    if not path.exists():
        raise CheckpointError(f"weights file not found: {path} (expected {EXPECTED})")


def _read(path: Path) -> tuple[object, list[str]]:
    """Unpickle the file, tensors and plain data only (see the module doc)."""
    require_file(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file (expected {EXPECTED})")
    try:
        with path.open("rb") as file:
            magic = file.read(2)
    except OSError as error:
        raise CheckpointError(f"cannot read weights file {path}: {error.strerror}") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True), []
    except pickle.UnpicklingError as error:
        if "weights only" not in str(error).lower():
            raise _not_a_checkpoint(path, magic, error) from None
    except Exception as error:  # torch raises many types for a file that is no checkpoint
        raise _not_a_checkpoint(path, magic, error) from None
    if os.environ.get(TRUST_VARIABLE) != "1":
        raise CheckpointError(
            f"{path} holds Python objects beyond tensors, which can run code when loaded: "
            f"refused (for a file you trust, set {TRUST_VARIABLE}=1)"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise _not_a_checkpoint(path, magic, error) from None
    return payload, [f"{path.name} was fully unpickled ({TRUST_VARIABLE}=1)"]


def _not_a_checkpoint(path: Path, magic: bytes, error: Exception) -> CheckpointError:
    if not magic:
        what = "the file is empty"
    elif magic == b"PK":
        what = "a zip archive that torch.save did not write, or a truncated one"
    elif magic[:1] == b"\x80":
        what = f"a pickle that cannot be read: {type(error).__name__}"
    else:
        what = "neither a zip archive nor a pickle"
    return CheckpointError(f"{path} is not a PyTorch checkpoint ({what}); expected {EXPECTED}")


def _unpack(path: Path, payload: object) -> tuple[Mapping[str, object], str, ModelConfig]:
    """(state dict, layout, config) from the unpickled object."""
    if not isinstance(payload, Mapping):
        raise CheckpointError(
            f"{path} holds a {type(payload).__name__}, not a dict with a 'model' state dict "
            f"(expected {EXPECTED})"
        )
    if isinstance(payload.get("model"), Mapping):
        state_dict, layout = payload["model"], "lipforensics"
    elif isinstance(payload.get("model_state_dict"), Mapping):
        state_dict, layout = payload["model_state_dict"], "lipreading"
    elif payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        state_dict, layout = payload, "state_dict"
    else:
        keys = ", ".join(map(str, list(payload)[:5])) or "none"
        raise CheckpointError(
            f"{path} has no state dict under 'model' or 'model_state_dict' "
            f"(top-level keys: {keys}); expected {EXPECTED}"
        )
    if layout == "state_dict":
        return state_dict, layout, ModelConfig()
    entry = payload.get("config") or {}
    if not isinstance(entry, Mapping):
        raise CheckpointError(f"{path} has an unreadable 'config' entry: not a dict")
    problem = _config_problem(entry)
    if problem:
        raise CheckpointError(f"{path} has an unreadable 'config' entry: {problem}")
    return state_dict, layout, ModelConfig.from_dict(dict(entry))


def _config_problem(entry: Mapping[object, object]) -> str | None:
    """What is wrong with a checkpoint's ``config`` entry (types and ranges of every
    field, see :data:`CONFIG_LIMITS`), or None."""
    unknown = [str(key) for key in entry if key not in CONFIG_LIMITS]
    if unknown:
        return f"unknown field(s) {', '.join(unknown[:3])}"
    for key, value in entry.items():
        kind, low, high, count = CONFIG_LIMITS[key]
        values = value if count else [value]
        if count and (
            not isinstance(value, (list, tuple)) or not count[0] <= len(value) <= count[1]
        ):
            return f"{key} must be a list of {count[0]}..{count[1]} numbers, got {_short(value)}"
        for item in values:
            right = isinstance(item, kind) and not isinstance(item, bool)
            if not right or not low <= item <= high:
                what = "whole numbers" if kind is int else "numbers"
                return f"{key} must hold {what} in {low}..{high}, got {_short(value)}"
        if key == "tcn_kernels" and any(item % 2 == 0 for item in values):
            return f"tcn_kernels must be odd, got {_short(value)}"
    return None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_size(path: Path, config: ModelConfig) -> None:
    """Refuse a network larger than :data:`MAX_PARAMETERS` before any memory is taken."""
    count = value_count(config)
    if count > MAX_PARAMETERS:
        raise CheckpointError(
            f"{path} has an unreadable 'config' entry: it describes a network of "
            f"{count:,} values, more than the {MAX_PARAMETERS:,} allowed"
        )


def _head_shape(state_dict: Mapping[str, object]) -> tuple[int, ...] | None:
    weight = state_dict.get(HEAD_KEYS[0])
    return tuple(weight.shape) if isinstance(weight, torch.Tensor) else None


def _check_fits(
    path: Path, state_dict: Mapping[str, object], model: LipForensics, ignore: tuple[str, ...]
) -> None:
    """Raise a one-line CheckpointError unless keys and shapes match the network exactly."""
    expected = {k: v for k, v in model.state_dict().items() if k not in ignore}
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        named = (("missing", missing), ("unexpected", unexpected))
        parts = [f"{len(keys)} {what} keys ({_first_three(keys)})" for what, keys in named if keys]
        raise CheckpointError(
            f"{path} does not fit the LipForensics network: {'; '.join(parts)}; expected {EXPECTED}"
        )
    for key, tensor in expected.items():
        value = state_dict[key]
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else None
        if shape != tuple(tensor.shape):
            raise CheckpointError(
                f"{path}: {key} has shape {shape} but the network ({_describe(model.config)}) "
                f"expects {tuple(tensor.shape)}"
            )


def _check_finite(path: Path, state_dict: Mapping[str, object]) -> None:
    """Raise a one-line CheckpointError if a floating-point tensor holds NaN or infinity."""
    for key, value in state_dict.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise CheckpointError(
                    f"{path}: {key} holds {bad} NaN or infinite value(s) of {value.numel()}; "
                    "the weights are corrupt"
                )


def _first_three(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")


def _describe(config: ModelConfig) -> str:
    if config == ModelConfig():
        return "the paper's widths"
    return f"widths {list(config.trunk_widths)}, TCN {config.tcn_hidden} per branch"
