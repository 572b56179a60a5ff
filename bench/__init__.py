"""Benchmarks, each a module that prints one table: run from the repository root as
``python -m bench.NAME`` (``--help`` lists a script's options). ``scan_crops`` is a helper two
of them share; helpers shared with the tests come from the ``tests`` package."""
