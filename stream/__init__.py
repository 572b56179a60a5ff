"""Video -> events, live and offline, in the order a frame travels: ``sources/`` (files,
RTSP, WebRTC), ``windows/`` (the 25 fps clock, frame queues, per-face windows, the
scheduler), ``faces/`` (landmarks, tracks, aligned mouth crops), then ``alerts/`` (sinks)
and ``server/`` (HTTP); ``pipeline.py`` and ``worker.py`` wire them, ``scan.py`` is the
offline path and ``detector.py`` the Python API."""
