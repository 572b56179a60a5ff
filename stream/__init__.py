"""Everything live: sources, the 25 fps clock, mouth crops, windows, scheduling, alerts."""
