"""/dashboard in Debian's Chromium shows who a call room's streams are: each face card and
each stream's row name the participant and the room, from the snapshot (/state) and from
live events; other streams show none."""

from __future__ import annotations

import pytest

from stream.alerts.policy import Level
from stream.events import CallParticipant, Connection, StreamStatus, Verdict
from stream.server.state import LiveState
from tests.browser_support import WAIT, launch
from tests.server_support import TOKEN

MS = 1000.0  # Playwright's timeouts are in milliseconds
ROOM = "lobby"
#: a display name with markup: shown as text
BOB = CallParticipant(ROOM, "Bob <b>Smith</b>", 5107609986375902)


def events(stream: str, who: CallParticipant | None, count: int) -> list:
    """A stream that connects, then ``count`` verdicts of its face 0."""
    status = StreamStatus(stream, Connection.CONNECTED, "receiving video", participant=who)
    verdicts = [
        Verdict(stream, 0, (n, n + 1.0), -3.0, 0.05, Level.CLEAR, 1.0, participant=who)
        for n in range(count)
    ]
    return [status, *verdicts]


def test_the_state_keeps_who_a_stream_is() -> None:
    state = LiveState()
    for event in (*events(f"{ROOM}/Bob", BOB, 1), *events("cam", None, 1)):
        state.apply(event)
    streams = {s["stream"]: s for s in state.snapshot()["streams"]}
    assert streams[f"{ROOM}/Bob"]["participant"] == BOB.to_dict()
    assert "participant" not in streams["cam"]
    assert state.snapshot()["faces"][0]["participant"] == BOB.to_dict()


@pytest.mark.slow
def test_the_dashboard_names_each_participant_and_its_room(playwright_driver, served) -> None:
    from playwright.sync_api import expect

    for event in (*events(f"{ROOM}/Bob", BOB, 3), *events("front-door", None, 3)):
        served.emit(event)  # before the page: it learns them from /state
    browser = launch(playwright_driver)
    try:
        page = browser.new_page()
        page.goto(f"{served.url}/dashboard#token={TOKEN}")
        expect(page.locator("#connection")).to_have_text("connected", timeout=WAIT * MS)
        label = "Bob <b>Smith</b> · room lobby"
        card = page.locator(".face", has_text=f"{ROOM}/Bob")
        expect(card.locator(".participant")).to_have_text(label, timeout=WAIT * MS)
        row = page.locator("#streams tr", has_text=f"{ROOM}/Bob")
        expect(row.locator(".participant")).to_have_text(label)
        other = page.locator("#streams tr", has_text="front-door")
        expect(other.locator(".participant")).to_have_text("")
        assert page.locator(".face", has_text="front-door").locator(".participant").count() == 0
        carol = CallParticipant(ROOM, "", 7)  # live, after the page: no display name
        for event in events(f"{ROOM}/id7", carol, 3):
            served.emit(event)
        card = page.locator(".face", has_text=f"{ROOM}/id7")
        expect(card.locator(".participant")).to_have_text("no name · room lobby")
        assert page.locator(".participant b").count() == 0  # markup stays text
    finally:
        browser.close()
