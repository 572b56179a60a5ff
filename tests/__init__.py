"""The test suite. A package, so that its helpers (``tests.live_support``,
``tests.clip_builder``, ``tests.rtsp_support``...) import by one name from the tests and from
``bench/`` alike, run from the repository root (``python -m pytest``, ``python -m bench.NAME``)."""
