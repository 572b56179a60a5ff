"""Decoded frames -> frames at 25 fps: the clock that resamples a source's timestamps, and the
bounded frame queue between a source and its face stage."""
