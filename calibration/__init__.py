"""Turning logits into decisions: thresholds, probability maps, INT8 calibration data."""
