"""The MQTT sink: alerts, per-stream state, verdicts and status, and the node's inference
backend status on a broker, with Home Assistant discovery (the topic tree is in
:mod:`stream.alerts.mqtt_topics`).

Alerts go to a durable :class:`~stream.alerts.outbox.Outbox` first and leave it only when
the broker has acknowledged them (QoS 1): with the broker away they wait on disk, and are
published, oldest first, when it is back - also by the next process on the same file after
a crash. Retained topics (discovery, state, status) are kept as their latest value and all
published again on every connection (a broker restarted without persistence has lost
them) and whenever Home Assistant says ``online`` on ``homeassistant/status``. Verdicts are
QoS 0: while the broker is away they are not kept.

One connection at a time, with a last will (``offline``, retained, on ``<root>/available``)
that the broker publishes if this process dies; a clean close publishes ``offline`` itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import uuid
from collections import deque
from contextlib import suppress

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from errors import LipForensicsError
from stream.alerts.alert_states import AlertStates
from stream.alerts.mqtt_address import MqttAddress, parse_mqtt_url
from stream.alerts.mqtt_topics import HA_STATUS, OFF, OFFLINE, ON, ONLINE, Topics
from stream.alerts.outbox import DELIVERED, Outbox
from stream.backoff import backoff_delays
from stream.events import (
    KEEP_ENDED,
    Alert,
    Availability,
    BackendStatus,
    Connection,
    Event,
    FaceEnded,
    StreamStatus,
    Verdict,
)

log = logging.getLogger(__name__)

#: verdicts waiting for a connected broker before the oldest are dropped.
VERDICT_QUEUE = 1000


def mqtt_client(
    address: MqttAddress,
    identifier: str,
    *,
    will: aiomqtt.Will | None = None,
    keepalive: int = 10,
    timeout: float = 10.0,
) -> aiomqtt.Client:
    """A client for the broker at ``address`` (not yet connected: ``async with`` it)."""
    return aiomqtt.Client(
        address.host,
        address.port,
        identifier=identifier,
        username=address.username,
        password=address.password,
        will=will,
        keepalive=keepalive,
        timeout=timeout,
        tls_context=ssl.create_default_context() if address.tls else None,
    )


def check_broker(url: str, timeout: float = 5.0) -> None:
    """Connect to the broker at ``url`` once, before anything slow starts. A broker that
    cannot be reached is no error: the sink keeps trying (and says so), and alerts wait in
    its outbox meanwhile.

    Raises:
        LipForensicsError: a malformed address, or a broker that refused the connection
            (wrong user name or password, not authorised).
    """
    address = parse_mqtt_url(url)

    async def connect() -> None:
        identifier = f"lipforensics-check-{uuid.uuid4().hex[:8]}"
        async with mqtt_client(address, identifier, timeout=timeout):
            pass

    try:
        asyncio.run(connect())
    except MqttConnectError as error:
        raise LipForensicsError(
            f"MQTT broker {address.shown} refused the connection: {error}"
        ) from None
    except aiomqtt.MqttError:
        pass


def _json(data: dict[str, object]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


class MqttSink:
    """Events to an MQTT broker (see the module doc); build it inside a running event loop.

    Attributes:
        published: alerts the broker acknowledged.
        dropped: alerts removed unsent because the outbox was full.
        connected: whether a connection is up now.
    """

    def __init__(
        self,
        address: MqttAddress,
        node: str,
        outbox: Outbox,
        *,
        keepalive: int = 10,
        timeout: float = 10.0,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        states: AlertStates | None = None,
    ) -> None:
        self.address = address
        self.topics = Topics(address.prefix, node)
        self.published = self.dropped = 0
        self.connected = False
        self.keepalive, self.timeout = keepalive, timeout
        self.backoff, self.max_backoff = backoff, max_backoff
        self._outbox = outbox
        self._states = states or AlertStates()
        self._retained: dict[str, bytes] = {}  # topic: latest payload
        self._ended: dict[str, None] = {}  # ended streams, oldest first
        self._dirty: dict[str, bytes] = {}  # retained messages not yet published
        self._verdicts: deque[tuple[str, bytes]] = deque(maxlen=VERDICT_QUEUE)
        self._wake = asyncio.Event()
        self._closing = False
        self._retain(self.topics.backend_discovery, _json(self.topics.backend_discovery_config()))
        self._retain(self.topics.backend_state, ON.encode())  # as the pipeline starts: up
        self._task = asyncio.get_running_loop().create_task(self._run())

    def send(self, event: Event) -> None:
        """Take one event: an alert goes to the outbox, a verdict to the queue (while
        connected), a stream's status to its retained topic, and the stream's state
        follows; a backend status goes to the node's retained backend topics."""
        match event:
            case BackendStatus():
                up = event.status is Availability.OK
                self._retain(self.topics.backend_state, (ON if up else OFF).encode())
                self._retain(self.topics.backend_status, _json(event.to_dict()))
                self._wake.set()
                return
            case Alert():
                self._outbox.add(event.to_dict())
                self.dropped = self._outbox.dropped
            case Verdict() if self.connected:
                topic = self.topics.of_stream(event.stream, "verdict")
                self._verdicts.append((topic, _json(event.to_dict())))
            case StreamStatus():
                self._retain(self.topics.of_stream(event.stream, "status"), _json(event.to_dict()))
                self._note_end(event.stream, ended=event.status is Connection.ENDED)
        self._follow(event)

    def _follow(self, event: StreamStatus | Verdict | Alert | FaceEnded) -> None:
        """The stream's discovery (once) and its state after ``event``."""
        stream = event.stream
        if self.topics.discovery(stream) not in self._retained:
            self._retain(self.topics.discovery(stream), _json(self.topics.discovery_config(stream)))
        state = self._states.update(event)
        if state is not None:
            self._set_state(stream, state)
        self._wake.set()

    async def close(self, grace: float = 5.0) -> None:
        """Publish what is pending (up to ``grace`` seconds), say ``offline``, disconnect.
        Alerts still pending stay in the outbox for the next process."""
        self._closing = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        self._outbox.close()

    def _retain(self, topic: str, payload: bytes) -> None:
        self._retained[topic] = self._dirty[topic] = payload

    def _note_end(self, stream: str, ended: bool) -> None:
        """Remember which streams ended; forget the topics of the oldest beyond
        :data:`KEEP_ENDED` (a server sees many short streams)."""
        self._ended.pop(stream, None)
        if ended:
            self._ended[stream] = None
        while len(self._ended) > KEEP_ENDED:
            old = next(iter(self._ended))
            del self._ended[old]
            self._states.forget(old)
            self._retained.pop(self.topics.discovery(old), None)
            for leaf in ("state", "status"):
                self._retained.pop(self.topics.of_stream(old, leaf), None)

    def _set_state(self, stream: str, on: bool) -> None:
        self._retain(self.topics.of_stream(stream, "state"), (ON if on else OFF).encode())

    @property
    def _idle(self) -> bool:
        return not (self._dirty or self._verdicts or self._outbox.pending)

    async def _run(self) -> None:
        """Connect, publish until closed; on a lost connection retry with backoff."""
        delays = backoff_delays(self.backoff, self.max_backoff)
        will = aiomqtt.Will(self.topics.available, OFFLINE, qos=1, retain=True)
        identifier = f"{self.topics.root.replace('/', '-')}-{uuid.uuid4().hex[:6]}"  # unique
        reported = False
        while True:
            client = mqtt_client(
                self.address, identifier, will=will, keepalive=self.keepalive, timeout=self.timeout
            )
            try:
                async with client:
                    self.connected, reported = True, False
                    delays = backoff_delays(self.backoff, self.max_backoff)
                    await self._session(client)
                    return
            except aiomqtt.MqttError as error:
                if not reported:
                    log.warning(
                        "MQTT broker %s: %s; retrying (%d alert(s) wait in %s)",
                        self.address.shown,
                        error,
                        self._outbox.pending,
                        self._outbox.path,
                    )
                    reported = True
            finally:
                self.connected = False
            await asyncio.sleep(next(delays))

    async def _session(self, client: aiomqtt.Client) -> None:
        """Publish on one connection until closing and idle; raises MqttError when the
        connection drops."""
        listener = asyncio.ensure_future(self._listen(client))
        try:
            await client.publish(self.topics.available, ONLINE, qos=1, retain=True)
            await client.subscribe(HA_STATUS, qos=1)
            self._dirty.update(self._retained)
            while True:
                await self._flush(client)
                if self._closing and self._idle:
                    break
                self._wake.clear()
                woken = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({woken, listener}, return_when="FIRST_COMPLETED")
                woken.cancel()
                if listener.done():
                    listener.result()  # the connection dropped: raises MqttError
            await client.publish(self.topics.available, OFFLINE, qos=1, retain=True)
        finally:
            listener.cancel()
            with suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await listener

    async def _listen(self, client: aiomqtt.Client) -> None:
        """Home Assistant (re)started: send every retained topic again."""
        async for message in client.messages:
            if message.payload == ONLINE.encode():
                self._dirty.update(self._retained)
                self._wake.set()

    async def _flush(self, client: aiomqtt.Client) -> None:
        """Publish pending alerts (oldest first, each marked once acknowledged), then the
        retained topics that changed, then the queued verdicts."""
        while (item := self._outbox.next_pending()) is not None:
            seq, event = item
            await client.publish(self.topics.events, _json(event), qos=1)
            self._outbox.mark(seq, DELIVERED)
            self.published += 1
        while self._dirty:
            topic = next(iter(self._dirty))
            await client.publish(topic, self._dirty.pop(topic), qos=1, retain=True)
        while self._verdicts:
            topic, payload = self._verdicts.popleft()
            await client.publish(topic, payload, qos=0)
