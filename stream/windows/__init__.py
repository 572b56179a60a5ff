"""Mouth crops -> scored windows: per-face ring buffers, and the scheduler that batches the
encodings and windows of every stream into backend calls."""
