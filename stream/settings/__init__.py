"""Settings by the stage they configure: ``groups.py`` (sources, faces, alerts, fleet),
``engine.py``, ``server.py`` (with the WHIP endpoint's), composed in ``pipeline.py``
(``Settings``, ``load_settings``); ``layout.py`` finds each name's group in any layout of a
TOML file, ``toml_file.py`` is the one reader, ``limits.py`` the bounds, ``shard.py`` which
cameras this node runs."""
