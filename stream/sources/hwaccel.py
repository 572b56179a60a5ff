"""Hardware video decoding through PyAV (``av.open(..., hwaccel=HWAccel(...))``).

The ``hwaccel`` setting names an FFmpeg device type (``"cuda"`` on NVIDIA GPU boxes,
``"vaapi"`` or ``"qsv"`` on Intel, ...): files and RTSP cameras are then decoded on that
device and the frames downloaded to memory as usual. A stream the device cannot decode
falls back to the software decoder; a device that cannot be opened at all (no GPU, no
driver, no permission) fails the source in one line.
"""

from __future__ import annotations

from typing import Any

from errors import LipForensicsError


def available_hwaccels() -> list[str]:
    """The device types this PyAV's FFmpeg was built with (empty: PyAV without HWAccel)."""
    try:
        from av.codec.hwaccel import hwdevices_available
    except ImportError:
        return []
    return list(hwdevices_available())


def check_hwaccel(name: str | None) -> None:
    """Raise LipForensicsError unless ``name`` is None or a device type FFmpeg knows here."""
    if name is None:
        return
    known = available_hwaccels()
    if name not in known:
        choices = ", ".join(known) if known else "none in this PyAV build"
        raise LipForensicsError(
            f"unknown hwaccel {name!r}: this FFmpeg decodes on {choices} (or leave it unset)"
        )


def hwaccel_options(name: str | None) -> dict[str, Any]:
    """Keyword arguments for ``av.open``: none for software decoding, else ``hwaccel``."""
    if name is None:
        return {}
    from av.codec.hwaccel import HWAccel

    return {"hwaccel": HWAccel(name, allow_software_fallback=True)}


def hwaccel_failure(name: str | None, error: Exception) -> str:
    """Why opening failed, naming the hardware decoder when one was asked for."""
    detail = getattr(error, "strerror", None) or str(error)
    if name is None:
        return detail
    return f"{detail} (hardware decoding on {name!r}: needs that device and its driver)"
