"""A real MQTT broker for the tests: Debian's ``mosquitto`` on a free 127.0.0.1 port, and a
subscriber that keeps every message it sees.

`.ci/run` installs mosquitto; elsewhere the MQTT tests are skipped with the reason, unless
``LIPFORENSICS_CI`` is set (then a missing broker is a failure).
"""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import suppress
from pathlib import Path

import aiomqtt
import pytest

from tests.live_support import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def require_mosquitto() -> None:
    """Skip (fail under CI) when mosquitto is not installed."""
    if not (os.access(MOSQUITTO, os.X_OK) and os.access(MOSQUITTO_PASSWD, os.X_OK)):
        reason = "mosquitto is not installed (apt: mosquitto)"
        if os.environ.get("LIPFORENSICS_CI"):
            pytest.fail(reason)
        pytest.skip(reason)


class Mosquitto:
    """One broker process in ``directory``; :meth:`start` again after :meth:`kill` reuses
    the port (and, with ``persistence``, the saved sessions).

    Args:
        users: user name -> password; without, anonymous clients are allowed.
        persistence: keep sessions and queued messages in ``directory`` (see :meth:`save`).
    """

    def __init__(
        self, directory: Path, users: dict[str, str] | None = None, persistence: bool = False
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.persistence = persistence
        self.process: subprocess.Popen[bytes] | None = None
        lines = [f"listener {self.port} 127.0.0.1", f"user {getpass.getuser()}"]
        lines += ["log_dest stderr", "log_type error", "log_type warning"]
        if persistence:
            lines += ["persistence true", f"persistence_location {directory}/"]
        if users:
            passwords = directory / "passwords"
            for number, (user, password) in enumerate(users.items()):
                create = ["-c"] if number == 0 else []
                command = [MOSQUITTO_PASSWD, *create, "-b", str(passwords), user, password]
                subprocess.run(command, check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        self.config = directory / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")

    def url(self, user: str | None = None, password: str | None = None, prefix: str = "") -> str:
        """``mqtt://[user:password@]127.0.0.1:PORT[/prefix]``."""
        credentials = f"{user}:{password}@" if user else ""
        return f"mqtt://{credentials}127.0.0.1:{self.port}" + (f"/{prefix}" if prefix else "")

    def start(self) -> None:
        """Start the broker and wait until it takes connections."""
        log = open(self.directory / "mosquitto.log", "ab")  # noqa: SIM115 (the broker's stderr)
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stderr=log)
        log.close()
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log()}")
            with suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log()}")

    def save(self) -> None:
        """Have the broker write its sessions and queued messages to disk (SIGUSR1)."""
        database = self.directory / "mosquitto.db"
        database.unlink(missing_ok=True)
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10.0
        while not database.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert database.exists(), "mosquitto did not save its database"

    def kill(self) -> None:
        """SIGKILL the broker (a crash: nothing is saved, every connection drops)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """End the broker."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def log(self) -> str:
        """What the broker wrote on stderr."""
        return (self.directory / "mosquitto.log").read_text(errors="replace")


class Watcher:
    """A real subscriber: keeps (topic, payload, retain) of every message on ``topics``,
    reconnecting when the broker goes away. With a fixed ``identifier`` it keeps a
    persistent session, so a broker that saved it queues QoS 1 messages while it is away."""

    def __init__(self, broker: Mosquitto, topics: list[str], identifier: str = "watcher") -> None:
        self.broker = broker
        self.topics = topics
        self.identifier = identifier
        self.messages: list[tuple[str, bytes, bool]] = []
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def stop(self) -> None:
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task

    def payloads(self, topic: str) -> list[bytes]:
        """The payloads seen on ``topic``, in order."""
        return [payload for seen, payload, _ in self.messages if seen == topic]

    async def wait_for(self, found, what: str, timeout: float = 30.0) -> None:
        """Wait until ``found()`` is true (the test's time limit for a broken setup)."""
        deadline = time.monotonic() + timeout
        while not found():
            assert time.monotonic() < deadline, f"never saw {what}; got {self.messages}"
            await asyncio.sleep(0.02)

    async def _follow(self) -> None:
        port = self.broker.port
        while True:
            client = aiomqtt.Client(
                "127.0.0.1", port, identifier=self.identifier, clean_session=False
            )
            try:
                async with client:
                    for topic in self.topics:
                        await client.subscribe(topic, qos=1)
                    self.subscribed.set()
                    async for message in client.messages:
                        self.messages.append((str(message.topic), message.payload, message.retain))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)
