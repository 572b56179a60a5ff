"""Mouth crops -> scored windows: the 25 fps clock, bounded frame queues, per-face windows,
and the scheduler that batches the encodings and windows of every stream into backend calls."""
