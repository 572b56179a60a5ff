"""Video -> events, live and offline, in the order a frame travels: ``sources/`` (files, RTSP,
WebRTC), ``pacing/`` (the 25 fps clock and the frame queue), ``faces/`` (landmarks, tracks,
aligned mouth crops), ``windows/`` (per-face windows, the scheduler), ``alerts/`` (the alert
policy and the sinks) and ``server/`` (HTTP). ``events.py`` holds the records that flow out,
``pipeline.py`` and ``worker.py`` wire the stages, ``health/`` says whether the node is
watching, ``settings/`` configures it, ``scan/`` is the offline path and ``detector.py`` the
Python API."""
