"""Bounds of the numeric settings, checked in one place so that every group refuses a number
no machine could honour (``inference_threads = 100000``) in the same one-line words."""

from __future__ import annotations

from collections.abc import Mapping

from errors import LipForensicsError


def check_whole(settings: object, limits: Mapping[str, tuple[int, int]]) -> None:
    """Each named whole-number attribute of ``settings`` (None: not set) within its
    inclusive ``(low, high)``.

    Raises:
        LipForensicsError: ``NAME must be LOW..HIGH, got VALUE``.
    """
    for name, (low, high) in limits.items():
        value = getattr(settings, name)
        if value is not None and not low <= value <= high:
            raise LipForensicsError(f"{name} must be {low}..{high}, got {value}")


def check_positive(settings: object, limits: Mapping[str, float]) -> None:
    """Each named number attribute of ``settings`` (None: not set) above 0 and at most its
    limit (NaN fails).

    Raises:
        LipForensicsError: ``NAME must be a positive number up to HIGH, got VALUE``.
    """
    for name, high in limits.items():
        value = getattr(settings, name)
        if value is not None and not 0 < value <= high:
            raise LipForensicsError(f"{name} must be a positive number up to {high:g}, got {value}")
