"""Frames -> aligned mouth crops: MediaPipe landmarks, track ids, smoothing, alignment."""
