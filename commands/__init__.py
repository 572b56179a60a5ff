"""One module per ``run_stream.py`` sub-command.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Top-level imports stay light (argparse, pathlib): heavy libraries are imported in ``run``
so that ``--help`` is instant.
"""
