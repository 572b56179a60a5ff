"""Mouth crops as one picture: a grid of evenly spaced crops, for people to look at."""

from __future__ import annotations

import numpy as np

#: tiles per row of a contact sheet, and the most tiles it shows
SHEET_COLUMNS = 20
SHEET_TILES = 400


def contact_sheet(
    crops: np.ndarray, columns: int = SHEET_COLUMNS, tiles: int = SHEET_TILES
) -> np.ndarray:
    """A grid image (uint8) of up to ``tiles`` of the (N, H, W) ``crops``, evenly spaced
    over the sequence, ``columns`` to a row."""
    picked = crops[np.linspace(0, len(crops) - 1, min(len(crops), tiles)).round().astype(int)]
    rows = -(-len(picked) // columns)
    size = crops.shape[1]
    sheet = np.zeros((rows * size, min(columns, len(picked)) * size), dtype=np.uint8)
    for index, crop in enumerate(picked):
        row, col = divmod(index, columns)
        sheet[row * size : (row + 1) * size, col * size : (col + 1) * size] = crop
    return sheet
