"""Benchmarks, each a module that prints one table: run from the repository root as
``python -m bench.NAME`` (``--help`` lists a script's options). Helpers shared with the tests
come from the ``tests`` package."""
