"""Where frames come from: files, RTSP cameras, WebRTC tracks, and the addresses that name them."""
