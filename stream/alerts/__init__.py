"""Verdicts -> the outside world: sinks (JSON lines, webhook, MQTT), the durable outbox, and the
in-memory broadcast that pages and the Python API follow."""
