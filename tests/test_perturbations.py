"""Each robustness perturbation changes real video frames the way its definition says, gets
worse with the level, and is deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from stream.sources.video_file import VideoFile
from training.perturbations import LEVELS, PERTURBATIONS, perturb, rgb_to_ycbcr


@pytest.fixture(scope="module")
def frames(talking_clip) -> list[np.ndarray]:
    with VideoFile(talking_clip) as video:
        return [rgb for _, (_, rgb) in zip(range(12), video.frames(), strict=False)]


def run(frames: list[np.ndarray], name: str, level: int, seed: int = 0) -> list[np.ndarray]:
    return list(perturb(frames, name, level, seed))


def high_frequency_share(rgb: np.ndarray, cutoff: float) -> float:
    """Share of the luma spectrum's energy above ``cutoff`` cycles per pixel."""
    luma = rgb_to_ycbcr(rgb)[..., 0]
    spectrum = np.abs(np.fft.fft2(luma - luma.mean())) ** 2
    fy = np.abs(np.fft.fftfreq(luma.shape[0]))[:, None]
    fx = np.abs(np.fft.fftfreq(luma.shape[1]))[None, :]
    return float(spectrum[np.maximum(fy, fx) > cutoff].sum() / spectrum.sum())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_every_perturbation_is_deterministic_and_keeps_the_frames(frames, name) -> None:
    first = run(frames[:4], name, 3)
    again = run(frames[:4], name, 3)
    assert len(first) == 4
    for original, out, repeat in zip(frames, first, again, strict=False):
        assert out.shape == original.shape and out.dtype == np.uint8
        assert np.array_equal(out, repeat)
        assert not np.array_equal(out, original)


# block-wise damage depends on where the blocks land: its own test counts the blocks
@pytest.mark.parametrize("name", [name for name in PERTURBATIONS if name != "block"])
def test_every_perturbation_gets_worse_with_the_level(frames, name) -> None:
    scores = [
        np.mean([psnr(f, o) for f, o in zip(frames[:3], run(frames[:3], name, level), strict=True)])
        for level in range(1, LEVELS + 1)
    ]
    assert all(
        later <= earlier + 0.05 for earlier, later in zip(scores, scores[1:], strict=False)
    ), scores
    assert scores[-1] < scores[0]


def test_saturation_changes_chroma_not_luma(frames) -> None:
    original = rgb_to_ycbcr(frames[0])
    for level, factor in enumerate(PERTURBATIONS["saturation"].levels, start=1):
        out = rgb_to_ycbcr(run(frames[:1], "saturation", level)[0])
        assert np.abs(out[..., 0] - original[..., 0]).mean() * 255 < 1.0
        chroma_ratio = np.abs(out[..., 1:] - 0.5).mean() / np.abs(original[..., 1:] - 0.5).mean()
        assert chroma_ratio == pytest.approx(factor, abs=0.02)
    grey = run(frames[:1], "saturation", 5)[0].astype(int)
    assert np.abs(grey - grey[..., :1]).max() <= 1


def test_contrast_scales_pixel_values(frames) -> None:
    for level, factor in enumerate(PERTURBATIONS["contrast"].levels, start=1):
        out = run(frames[:1], "contrast", level)[0]
        assert np.array_equal(out, np.floor(frames[0].astype(np.float32) * factor).astype(np.uint8))


def test_block_wise_pastes_grey_8x8_blocks_at_seeded_places(frames) -> None:
    areas = []
    for level, blocks in enumerate(PERTURBATIONS["block"].levels, start=1):
        out = run(frames[:1], "block", level)[0]
        changed = np.any(out != frames[0], axis=2)
        assert np.all(out[changed] == 128)
        # at most `blocks` 8x8 squares (they may overlap), and most of their area
        assert 0.5 * blocks * 64 < changed.sum() <= blocks * 64
        areas.append(changed.sum())
    assert areas == sorted(areas)
    assert not np.array_equal(
        run(frames[:1], "block", 3, seed=1)[0], run(frames[:1], "block", 3)[0]
    )
    two = run(frames[:2], "block", 3)
    assert not np.array_equal(two[0] != frames[0], two[1] != frames[1])


def test_noise_standard_deviation_matches_the_level() -> None:
    grey = np.full((240, 320, 3), 128, np.uint8)
    for level, variance in enumerate(PERTURBATIONS["noise"].levels[:4], start=1):
        out = run([grey], "noise", level)[0]
        luma_noise = (rgb_to_ycbcr(out)[..., 0] - rgb_to_ycbcr(grey)[..., 0]) * 255
        expected = np.sqrt(variance) * 255 * 255 / 219
        assert luma_noise.std() == pytest.approx(expected, rel=0.06)
        assert abs(luma_noise.mean()) < 0.1 * expected
    a, b = run([grey, grey], "noise", 1)
    assert not np.array_equal(a, b)
    assert not np.array_equal(a, run([grey], "noise", 1, seed=7)[0])


def test_blur_removes_high_frequencies(frames) -> None:
    shares = [high_frequency_share(run(frames[:1], "blur", level)[0], 0.1) for level in range(1, 6)]
    original = high_frequency_share(frames[0], 0.1)
    assert shares[0] < 0.5 * original
    assert all(later < earlier for earlier, later in zip(shares, shares[1:], strict=False))


def test_pixelation_leaves_little_above_the_coarse_grid() -> None:
    texture = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    for level, factor in enumerate(PERTURBATIONS["pixelation"].levels, start=1):
        out = run([texture], "pixelation", level)[0]
        cutoff = 0.5 / factor  # Nyquist of the down-scaled frame
        assert high_frequency_share(out, cutoff) < 0.2 * high_frequency_share(texture, cutoff)


def test_compression_is_a_real_h264_round_trip_of_any_size(frames) -> None:
    odd = [f[:299, :397] for f in frames[:6]]
    out = run(odd, "compression", 5)
    assert len(out) == 6 and all(o.shape == (299, 397, 3) for o in out)
    assert 25 < np.mean([psnr(a, b) for a, b in zip(odd, out, strict=True)]) < 45


def test_unknown_perturbation_or_level_is_refused(frames) -> None:
    with pytest.raises(ValueError, match="unknown perturbation"):
        run(frames[:1], "jpeg", 1)
    with pytest.raises(ValueError, match="1..5"):
        run(frames[:1], "blur", 6)
