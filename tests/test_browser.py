"""The pages in a real browser: Debian's Chromium publishes its fake camera (the demo's
clips) to ``serve`` from /publish, and /dashboard follows every stream, with the demo
detector behind a real server on 127.0.0.1."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from stream.alerts.policy import Level
from stream.events import Connection, StreamStatus, Verdict
from tests.browser_support import (
    WAIT,
    camera_flags,
    demo_clip_y4m,
    launch,
    screenshot,
    wait_until,
)
from tests.server_support import TOKEN

pytestmark = pytest.mark.slow
#: a stream name a publisher could choose, meant to run script in the viewer's browser.
HOSTILE = '<img src=x onerror="alert(1)">'
MS = 1000.0  # Playwright's timeouts are in milliseconds
#: a captured tab is in the background: keep it rendering at full rate.
BACKGROUND_TABS_RUN = (
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--disable-background-timer-throttling",
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    return {name: demo_clip_y4m(name, folder) for name in ("manipulated", "genuine")}


@pytest.fixture(scope="module")
def camera(playwright_driver, clips):
    """A browser whose camera plays the demo's manipulated clip."""
    browser = launch(playwright_driver, *camera_flags(clips["manipulated"]))
    yield browser
    browser.close()


def start_publishing(browser, served):
    """A page of ``browser`` publishing its camera from /publish (the token in the
    fragment); the page and its stream's name."""
    page = browser.new_page()
    page.goto(f"{served.url}/publish#token={TOKEN}&source=camera")
    stream = wait_until(lambda: page.text_content("#stream").strip("-"), "the WHIP answer")
    return page, stream


def stop_publishing(page, served, stream) -> str:
    """Press Stop; the page's last words once the session has ended."""
    from playwright.sync_api import expect

    page.click("#stop")
    expect(page.locator("#connection")).to_contain_text("session ended", timeout=WAIT * MS)
    wait_until(lambda: served.sessions == 0, "the WHIP session to close")
    return page.text_content("#connection")


def test_the_manipulated_clip_from_a_browser_camera_reaches_alert_and_stop_ends_it(
    camera,
    served,
):
    from playwright.sync_api import expect

    page, stream = start_publishing(camera, served)
    assert page.url.endswith("#source=camera")  # the token left the address bar
    expect(page.locator("#faces .badge").first).to_have_text("alert", timeout=WAIT * MS)
    assert served.of(stream, "alert")  # in the events too
    codec = wait_until(lambda: page.text_content("#codec").strip("-"), "the codec")
    print(f"\nChromium sends {codec}; first alert window at "
          f"{served.of(stream, 'alert')[0]['pts']} s of the stream")  # fmt: skip
    assert codec.startswith("video/")
    assert stop_publishing(page, served, stream) == "stopped (session ended: 200)"
    (ended,) = [e for e in served.of(stream, "status") if e["status"] == "disconnected"]
    assert ended["detail"] == "the publisher ended the session"
    page.close()


def test_the_genuine_clip_from_a_browser_camera_stays_clear(playwright_driver, clips, served):
    browser = launch(playwright_driver, *camera_flags(clips["genuine"]))
    try:
        page, stream = start_publishing(browser, served)
        # the whole 8 s clip, once through (window ends are in the clip's own seconds)
        wait_until(lambda: any(v["pts"][1] >= 8.0 for v in served.of(stream, "verdict")), "8 s")
        levels = {v["level"] for v in served.of(stream, "verdict")}
        assert levels == {"clear"} and not served.of(stream, "alert")
        assert {b.text_content() for b in page.query_selector_all("#faces .badge")} == {"clear"}
        stop_publishing(page, served, stream)
    finally:
        browser.close()


#: a call's page that shows the whole of each video in its tile (a call app letterboxes)
FITTED = "width:100%;height:100%;min-height:0;object-fit:contain;display:block;background:#000"


def call_page(folder, videos: dict[str, bytes], columns: int):
    """A page titled "the call" showing ``videos`` (file name -> mp4 bytes) in a grid of
    ``columns``, each looping and fitted in its tile, as a call's gallery shows people."""
    rows = -(-len(videos) // columns)
    tiles = []
    for name, data in videos.items():
        (folder / name).write_bytes(data)
        tiles.append(f"<video src='{name}' autoplay muted loop style='{FITTED}'></video>")
    grid = (
        f"display:grid;grid-template-columns:repeat({columns},minmax(0,1fr));"
        f"grid-template-rows:repeat({rows},minmax(0,1fr));width:100vw;height:100vh;gap:4px"
    )
    page = folder / "call.html"
    page.write_text(
        "<!doctype html><title>the call</title><body style='margin:0;background:#222'>"
        f"<div style='{grid}'>{''.join(tiles)}</div>"
    )
    return page


def share_call(playwright_driver, served, call):
    """A browser showing ``call`` in a 1280x720 window and, in front of it, /publish sharing
    the call's tab (Chromium picks it by title): the browser, the page and its stream."""
    pick = "--auto-select-tab-capture-source-by-title=the call"
    browser = launch(playwright_driver, pick, *BACKGROUND_TABS_RUN)
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    context.new_page().goto(call.as_uri())
    page = context.new_page()  # in front: the call's tab is behind, as a person's is
    page.goto(f"{served.url}/publish#token={TOKEN}&source=screen")
    stream = wait_until(lambda: page.text_content("#stream").strip("-"), "the WHIP answer")
    return browser, page, stream


def test_a_shared_tab_playing_the_manipulated_clip_reaches_alert(
    playwright_driver,
    tmp_path,
    served,
):
    """source=screen: the call's tab (behind /publish) plays the manipulated clip; the face
    in it reaches ALERT, with the clip's own window logits (a page that cut the face at the
    chin made every window look genuine: see docs/calls.md)."""
    from playwright.sync_api import expect

    from training.demo_detector import DEMO_MANIPULATED

    call = call_page(tmp_path, {"call.mp4": DEMO_MANIPULATED.read_bytes()}, columns=1)
    browser, page, stream = share_call(playwright_driver, served, call)
    try:
        expect(page.locator("#faces .badge").first).to_have_text("alert", timeout=40 * MS)
        assert served.of(stream, "alert")
        assert page.locator("#faces .face").count() == 1
        sending = wait_until(lambda: page.text_content("#sending").strip("-"), "sending")
        assert re.fullmatch(r"\d+x\d+, \d+ fps, \d+ kbit/s.*", sending), sending
        stop_publishing(page, served, stream)
    finally:
        browser.close()


def test_a_shared_tab_playing_the_genuine_clip_stays_clear(
    playwright_driver,
    tmp_path,
    served,
):
    from training.demo_detector import DEMO_GENUINE

    call = call_page(tmp_path, {"call.mp4": DEMO_GENUINE.read_bytes()}, columns=1)
    browser, page, stream = share_call(playwright_driver, served, call)
    try:
        wait_until(lambda: len(served.of(stream, "verdict")) >= 40, "40 verdicts of the tab")
        assert {v["level"] for v in served.of(stream, "verdict")} == {"clear"}
        assert not served.of(stream, "alert")
        stop_publishing(page, served, stream)
    finally:
        browser.close()


def test_a_shared_tab_showing_a_gallery_gives_every_face_and_the_manipulated_one_alerts(
    playwright_driver,
    tmp_path,
    served,
):
    """A 2x2 call gallery in the shared tab: the manipulated clip top left, the genuine one
    in the other three tiles (from other moments). Four faces get verdicts, each in its own
    quarter of the frame, and the one that alerts is the top-left one."""
    from training.demo_detector import DEMO_GENUINE, DEMO_MANIPULATED

    genuine = DEMO_GENUINE.read_bytes()
    videos = {
        "manipulated.mp4": DEMO_MANIPULATED.read_bytes(),
        "genuine.mp4": genuine,
        "genuine-b.mp4": genuine,
        "genuine-c.mp4": genuine,
    }
    call = call_page(tmp_path, videos, columns=2)
    browser, page, stream = share_call(playwright_driver, served, call)
    try:
        quarters = {}  # face -> (column, row) of its box's centre

        def every_face_and_an_alert():
            for verdict in served.of(stream, "verdict"):
                x0, y0, x1, y1 = verdict["box"]
                quarters[verdict["face"]] = (int((x0 + x1) > 1), int((y0 + y1) > 1))
            return len(set(quarters.values())) == 4 and served.of(stream, "alert")

        wait_until(every_face_and_an_alert, "verdicts of four faces and an alert", 90.0)
        alerted = {alert["face"] for alert in served.of(stream, "alert")}
        assert {quarters[face] for face in alerted} == {(0, 0)}  # the manipulated tile only
        assert page.locator("#faces .face").count() >= 4
        stop_publishing(page, served, stream)
    finally:
        browser.close()


def test_the_dashboard_shows_a_late_viewer_every_face_alert_crop_and_stream(
    camera,
    served,
    tmp_path,
):
    """Opened after the stream alerted: the snapshot shows the stream, its face and the
    alert at once; the chart fills, the alert's crops load; a hostile stream name stays
    text; logging out and a wrong token both lead back to the login."""
    from playwright.sync_api import expect

    publisher, stream = start_publishing(camera, served)
    wait_until(lambda: served.of(stream, "alert"), "an alert")
    page = camera.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sent = []  # (address, Authorization header) of every request the page makes
    page.on(
        "request", lambda request: sent.append((request.url, request.headers.get("authorization")))
    )
    page.goto(f"{served.url}/dashboard")
    expect(page.locator("#login")).to_be_visible()
    page.fill("#token", TOKEN)
    page.click("#login button")
    expect(page.locator("#connection")).to_have_text("connected", timeout=WAIT * MS)
    # the token travels in the Authorization header only, and stays in this tab's storage
    data = [auth for url, auth in sent if url.split("?")[0].endswith(("/state", "/events"))]
    assert data and set(data) == {f"Bearer {TOKEN}"}
    assert not any(TOKEN in url for url, _ in sent)
    assert page.evaluate("Object.values(sessionStorage)") == [TOKEN]
    assert page.evaluate("localStorage.length") == 0
    expect(page.locator("#login")).to_be_hidden()
    expect(page.locator("#logout")).to_be_visible()
    health = re.compile(r"^health: (ok|degraded)")  # whatever /healthz says, it is read
    expect(page.locator("#health")).to_have_text(health, timeout=WAIT * MS)
    # from the snapshot: the alert happened before this page existed
    alert_row = page.locator("#alerts tr", has_text=stream).first
    expect(alert_row).to_be_visible()
    stream_row = page.locator("#streams tr", has_text=stream)
    expect(stream_row.locator(".status")).to_have_text("connected")
    card = page.locator(".face", has_text=stream)
    expect(card.locator(".badge")).to_have_text("alert", timeout=WAIT * MS)
    page.wait_for_function(
        "() => Number(document.querySelector('.face svg.chart').dataset.points) >= 10",
        timeout=WAIT * MS,
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('#alerts img.crops')].some("
        "(i) => i.complete && i.naturalWidth === 25 * 88 && i.naturalHeight === 88)",
        timeout=WAIT * MS,
    )
    for number in range(3):  # a publisher that names its stream with markup
        served.emit(StreamStatus(HOSTILE, Connection.CONNECTED, "hostile"))
        served.emit(Verdict(HOSTILE, 0, (number, number + 1.0), 5.0, 0.99, Level.ALERT, 1.0))
    expect(page.locator(".face", has_text=HOSTILE)).to_be_visible(timeout=WAIT * MS)
    expect(page.locator("#streams tr", has_text=HOSTILE)).to_be_visible()
    assert page.locator("img:not(.crops):not(.thumbnail)").count() == 0 and not dialogs
    # each face card shows the face's latest picture, so a person can tell who it is
    page.wait_for_function(
        "() => [...document.querySelectorAll('.face img.thumbnail')].some("
        "(i) => i.complete && i.naturalHeight === 96)",
        timeout=WAIT * MS,
    )
    expect(card.locator(".quality")).to_contain_text("fps · face")
    shot = screenshot(page, "dashboard.png", tmp_path)
    assert np.asarray(Image.open(shot).convert("L")).std() > 20  # not blank
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0 and page.locator(".face").count() == 0
    page.fill("#token", TOKEN + "x")
    page.click("#login button")
    expect(page.locator("#connection")).to_have_text("the token was refused")
    expect(page.locator("#login")).to_be_visible()
    stop_publishing(publisher, served, stream)


def test_the_pages_parse_events_split_anywhere(camera, served):
    """live.js's parser in the browser: SSE text cut at every byte gives the same events."""
    page = camera.new_page()
    page.goto(f"{served.url}/dashboard")
    events = [{"type": "status", "n": 1}, {"type": "verdict", "p": 0.8, "s": "é"}]
    text = ": comment\r\n\r\n" + "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    parsed = page.evaluate(
        """(text) => {
            const runs = [];
            for (let cut = 0; cut <= text.length; cut += 1) {
                const seen = [];
                const parser = new EventParser((event) => seen.push(event));
                parser.push(text.slice(0, cut));
                parser.push(text.slice(cut));
                runs.push(seen);
            }
            return runs;
        }""",
        text,
    )
    assert all(run == events for run in parsed)
    page.close()
