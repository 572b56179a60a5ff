"""The method's constants and its logit -> probability map."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from engines.method import CLIP_FRAMES, FPS, FRAME_PERIOD, sigmoid


def test_a_clip_is_one_second_of_frames():
    assert CLIP_FRAMES == FPS and FRAME_PERIOD == 1 / FPS


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
