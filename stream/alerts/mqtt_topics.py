"""This node's MQTT topic tree and its Home Assistant discovery messages.

The tree's root is ``<prefix>/<node>`` (``lipforensics/<host name>`` by default), so that
every node of a fleet has its own availability and last will:

    <root>/available            retained "online"; "offline" as the last will
    <root>/events               alerts as JSON with their id (QoS 1, not retained)
    <root>/backend_state        retained "ON" while the inference backend answers, else "OFF"
    <root>/backend_status       the backend's last status event as JSON (retained)
    <root>/<stream>/state       retained "ON" while a face of the stream is at ALERT, else "OFF"
    <root>/<stream>/verdict     every verdict as JSON (QoS 0)
    <root>/<stream>/status      the stream's last status event as JSON (retained)
    homeassistant/binary_sensor/<node>_<stream>/config   retained discovery, one per stream
    homeassistant/binary_sensor/<node>/inference/config  retained discovery of the node's
                                                         inference (backend up or down)

Node and stream names become topic levels through :func:`topic_token`. The node's own
topics have one level below the root and a stream's two, so no stream name can reach them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

#: where Home Assistant looks for discovery messages, and where it says it (re)started.
DISCOVERY_PREFIX = "homeassistant"
HA_STATUS = f"{DISCOVERY_PREFIX}/status"
ONLINE, OFFLINE = "online", "offline"
ON, OFF = "ON", "OFF"

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def topic_token(name: str) -> str:
    """``name`` as one safe topic level and Home Assistant id: kept when it holds only
    letters, digits, ``_`` and ``-``; otherwise the rest become ``_`` and a short hash of
    the original is appended, so that ``cam/1`` and ``cam+1`` stay apart."""
    safe = _UNSAFE.sub("_", name)
    if safe == name and name:
        return name
    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"


@dataclass(frozen=True, slots=True)
class Topics:
    """The topic names of one node under ``prefix`` (see the module doc)."""

    prefix: str
    node: str

    @property
    def root(self) -> str:
        """``<prefix>/<node>``: every topic of this node but discovery starts here."""
        return f"{self.prefix}/{topic_token(self.node)}"

    @property
    def available(self) -> str:
        """Retained ``online``, or ``offline`` (the last will)."""
        return f"{self.root}/available"

    @property
    def events(self) -> str:
        """Alerts as JSON."""
        return f"{self.root}/events"

    @property
    def backend_state(self) -> str:
        """Retained ``ON`` while the inference backend answers, ``OFF`` during an outage."""
        return f"{self.root}/backend_state"

    @property
    def backend_status(self) -> str:
        """The backend's last status event as JSON (retained)."""
        return f"{self.root}/backend_status"

    def of_stream(self, stream: str, leaf: str) -> str:
        """``<root>/<stream>/<leaf>`` for ``state``, ``verdict`` or ``status``."""
        return f"{self.root}/{topic_token(stream)}/{leaf}"

    def discovery(self, stream: str) -> str:
        """The stream's retained Home Assistant discovery topic."""
        object_id = f"{topic_token(self.node)}_{topic_token(stream)}"
        return f"{DISCOVERY_PREFIX}/binary_sensor/{object_id}/config"

    @property
    def backend_discovery(self) -> str:
        """The node's retained Home Assistant discovery topic for its inference (the node
        id level keeps it apart from every stream's)."""
        return f"{DISCOVERY_PREFIX}/binary_sensor/{topic_token(self.node)}/inference/config"

    def discovery_config(self, stream: str) -> dict[str, object]:
        """Home Assistant's MQTT discovery payload for the stream's binary sensor: on while
        a face of the stream is at ALERT; unavailable while this node is offline."""
        return self._sensor(
            name=f"{stream} manipulated face",
            unique_id=f"lipforensics_{topic_token(self.node)}_{topic_token(stream)}",
            device_class="tamper",
            state_topic=self.of_stream(stream, "state"),
            json_attributes_topic=self.of_stream(stream, "status"),
        )

    def backend_discovery_config(self) -> dict[str, object]:
        """Home Assistant's MQTT discovery payload for the node's inference: a connectivity
        sensor, on while the backend answers; unavailable while this node is offline."""
        return self._sensor(
            name="inference",
            unique_id=f"lipforensics_{topic_token(self.node)}.inference",
            device_class="connectivity",
            state_topic=self.backend_state,
            json_attributes_topic=self.backend_status,
        )

    def _sensor(self, **entity: str) -> dict[str, object]:
        """A binary sensor of this node's device (``entity``: its own keys)."""
        return {
            **entity,
            "payload_on": ON,
            "payload_off": OFF,
            "availability_topic": self.available,
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "device": {
                "identifiers": [f"lipforensics_{topic_token(self.node)}"],
                "name": f"LipForensics {self.node}",
                "model": "LipForensics Live",
            },
        }
