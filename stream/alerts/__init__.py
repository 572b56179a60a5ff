"""Verdicts -> decisions -> the outside world: the per-face alert policy (CLEAR / SUSPICIOUS /
ALERT), sinks (JSON lines, webhook, MQTT), the durable outbox, and the in-memory broadcast that
pages and the Python API follow."""
