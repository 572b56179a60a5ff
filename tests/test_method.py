"""The method's constants and its logit -> probability map."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from engines.method import CLIP_FRAMES, FPS, Preprocessing, normalise_crops, sigmoid


def test_a_clip_is_the_papers_one_second_at_25_fps():
    assert (CLIP_FRAMES, FPS) == (25, 25)


def test_the_preprocessing_is_a_centre_crop_scaled_and_normalised():
    crops = np.arange(2 * 96 * 96).reshape(2, 96, 96).astype(np.uint8)
    inputs = normalise_crops(crops)
    assert inputs.shape == (2, 88, 88) and inputs.dtype == np.float32
    for t, row, column in ((0, 0, 0), (1, 87, 87), (0, 10, 50)):
        pixel = crops[t, row + 4, column + 4] / 255  # the centre crop starts at pixel 4
        assert inputs[t, row, column] == pytest.approx((pixel - 0.421) / 0.165, rel=1e-6)
    other = Preprocessing(crop_size=8, input_size=4, mean=0.5, std=0.25)
    assert other(np.full((1, 8, 8), 255, np.uint8)).tolist() == [[[2.0] * 4] * 4]
    with pytest.raises(ValueError, match=r"expected uint8 crops of shape \(T, 96, 96\)"):
        normalise_crops(np.zeros((1, 88, 88), np.uint8))


def test_sigmoid_of_a_number_is_a_float_and_never_overflows():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = [sigmoid(-1000.0), sigmoid(0.0), sigmoid(1000.0), sigmoid(np.float32(-800))]
    assert values == [0.0, 0.5, 1.0, 0.0]
    assert all(type(value) is float for value in values)
    assert sigmoid(2.0) == pytest.approx(1 / (1 + np.exp(-2.0)), rel=1e-15)
    assert sigmoid(-2.0) == pytest.approx(1 - sigmoid(2.0), rel=1e-15)


def test_sigmoid_of_an_array_keeps_its_shape_without_warnings():
    logits = np.array([[-1000.0, -2.0, 0.0], [2.0, 30.0, 1000.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probabilities = sigmoid(logits)
    assert probabilities.shape == (2, 3) and probabilities.dtype == np.float64
    assert probabilities[0, 0] == 0.0 and probabilities[0, 2] == 0.5
    assert probabilities[1, 2] == 1.0
    expected = [[sigmoid(float(x)) for x in row] for row in logits]
    np.testing.assert_allclose(probabilities, expected, rtol=1e-15)
