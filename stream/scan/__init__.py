"""The offline path: a file scored the paper's way, its evidence and its HTML report."""
