// LipForensics Live dashboard: every face with its level and probability chart, the alerts
// with the mouth crops that raised them, the streams with their state. A late page starts
// from /state, then follows /events. The page holds no data; the bearer token is kept in
// sessionStorage (gone with the tab) and sent as an Authorization header (live.js).
"use strict";

const MAX_ALERTS = 50;
const FACE_GONE_AFTER = 10; // seconds without a verdict before a face leaves the page

/** What the page shows, updated event by event (no DOM here). */
class DashboardState {
  constructor() {
    this.faces = new Map(); // "stream/face" -> latest verdict
    this.histories = new Map(); // "stream/face" -> History
    this.alerts = []; // newest first
    this.streams = new Map(); // stream -> {stream, status, detail, reconnects, wall_time}
    this.thresholds = {};
    this.skew = 0; // this machine's clock minus the server's, seconds (as of the last event)
  }

  /** The server's time now, by this machine's clock and the last measured skew. */
  serverNow() {
    return Date.now() / 1000 - this.skew;
  }

  /** Faces with a verdict in the last FACE_GONE_AFTER seconds before `now` (wall time). */
  currentFaces(now) {
    return [...this.faces.values()].filter((event) => now - event.wall_time <= FACE_GONE_AFTER);
  }

  /** The server's snapshot (GET /state), merged under anything newer already applied. */
  load(snapshot) {
    this.thresholds = snapshot.thresholds || {};
    if (snapshot.faces.length) this.skew = Date.now() / 1000 - snapshot.faces[0].wall_time;
    for (const face of snapshot.faces) {
      const key = `${face.stream}/${face.face}`;
      const known = this.faces.get(key);
      if (!known || known.wall_time < face.wall_time) this.faces.set(key, face);
      if (!this.histories.has(key)) this.histories.set(key, new History(face.history));
    }
    for (const stream of snapshot.streams) {
      const known = this.streams.get(stream.stream);
      if (!known || known.wall_time < stream.wall_time) this.streams.set(stream.stream, stream);
    }
    for (const alert of [...snapshot.alerts].reverse()) this.addAlert(alert);
    this.alerts.sort((a, b) => b.wall_time - a.wall_time);
  }

  addAlert(alert) {
    if (this.alerts.some((known) => known.id === alert.id)) return;
    this.alerts.unshift(alert);
    this.alerts.length = Math.min(this.alerts.length, MAX_ALERTS);
  }

  apply(event) {
    if (typeof event.wall_time === "number") this.skew = Date.now() / 1000 - event.wall_time;
    const key = `${event.stream}/${event.face}`;
    if (event.type === "verdict") {
      this.faces.set(key, event);
      if (!this.histories.has(key)) this.histories.set(key, new History());
      this.histories.get(key).add(event.wall_time, event.probability);
    } else if (event.type === "alert") {
      this.faces.set(key, event);
      this.addAlert(event);
    } else if (event.type === "face_ended") {
      this.faces.delete(key);
      this.histories.delete(key);
    } else if (event.type === "status") {
      const known = this.streams.get(event.stream) || { reconnects: 0 };
      const reconnects = known.reconnects + (event.status === "reconnecting" ? 1 : 0);
      this.streams.set(event.stream, { ...event, reconnects });
      if (event.status === "ended") {
        for (const face of [...this.faces.keys()]) {
          if (face.startsWith(`${event.stream}/`)) this.faces.delete(face);
        }
      }
    }
  }
}

// ---- the page -----------------------------------------------------------------------

const crops = new Map(); // alert id -> object URL of its crops (or null while loading)
let session = null; // {token, abort: AbortController, ticker}

function clock(wallTime) {
  return new Date(wallTime * 1000).toLocaleTimeString();
}

/** "Bob Smith · room 1234" for a call room's participant (its events' `participant`), "" for
 * any other stream. */
function participantLabel(event) {
  const who = event.participant;
  return who ? `${who.name || "no name"} · room ${who.room}` : "";
}

function renderFaces(state) {
  const now = state.serverNow();
  const shown = state.currentFaces(now);
  shown.sort((a, b) => a.stream.localeCompare(b.stream) || a.face - b.face);
  const cards = shown.map((event) => {
    const card = document.createElement("article");
    card.className = "face";
    const title = document.createElement("h3");
    const name = document.createElement("span");
    name.textContent = `${event.stream} · face ${event.face}`;
    const probability = document.createElement("span");
    probability.className = "probability-value";
    probability.textContent = `p = ${event.probability.toFixed(3)} (${streamTime(event.pts)})`;
    title.append(name, badge(event.level), probability);
    const history = state.histories.get(`${event.stream}/${event.face}`) || new History();
    const picture = session ? [faceThumbnail(event.stream, event.face, session.token)] : [];
    const who = [];
    if (event.participant) {
      const line = document.createElement("span");
      line.className = "participant";
      line.textContent = participantLabel(event);
      who.push(line);
    }
    card.append(title, ...who, ...picture, qualityNote(event), probabilityChart(history.points, state.thresholds, now));
    return card;
  });
  document.getElementById("faces").replaceChildren(...cards);
}

function cropImage(alert) {
  const image = document.createElement("img");
  image.alt = `mouth crops of alert ${alert.id}`;
  image.className = "crops";
  if (crops.get(alert.id)) {
    image.src = crops.get(alert.id);
  } else if (!crops.has(alert.id) && session) {
    crops.set(alert.id, null);
    fetch(`alerts/${encodeURIComponent(alert.id)}/crops.png`, {
      headers: { Authorization: `Bearer ${session.token}` },
    })
      .then((response) => (response.ok ? response.blob() : null))
      .then((blob) => {
        if (blob) crops.set(alert.id, URL.createObjectURL(blob));
      })
      .catch(() => crops.delete(alert.id));
  }
  return image;
}

function renderAlerts(state) {
  const alerts = document.getElementById("alerts");
  alerts.replaceChildren();
  for (const event of state.alerts) {
    const row = alerts.insertRow();
    cell(row, clock(event.wall_time));
    cell(row, event.stream);
    cell(row, String(event.face));
    cell(row, streamTime(event.pts));
    cell(row, event.logit.toFixed(2));
    row.insertCell().append(cropImage(event));
  }
  const shown = new Set(state.alerts.map((event) => event.id));
  for (const [id, url] of [...crops]) {
    if (shown.has(id)) continue;
    if (url) URL.revokeObjectURL(url); // the alert left the log: free its image
    crops.delete(id);
  }
}

function renderStreams(state) {
  const streams = document.getElementById("streams");
  streams.replaceChildren();
  const sorted = [...state.streams.values()].sort((a, b) => a.stream.localeCompare(b.stream));
  for (const event of sorted) {
    const row = streams.insertRow();
    cell(row, event.stream);
    cell(row, participantLabel(event), "participant");
    cell(row, event.status, `status status-${event.status}`);
    cell(row, String(event.reconnects));
    cell(row, clock(event.wall_time));
    cell(row, event.detail || "");
  }
}

function render(state) {
  renderFaces(state);
  renderAlerts(state);
  renderStreams(state);
}

/** One line from /healthz: "ok", or "degraded" and the reasons (given to token holders). */
function describeHealth(health) {
  if (health.status === "ok") return "health: ok";
  const reasons = health.reasons && health.reasons.length ? `: ${health.reasons.join("; ")}` : "";
  return `health: ${health.status}${reasons}`;
}

/** /healthz (200 ok, 503 degraded), with the token when logged in: the reasons need it. */
async function fetchHealth() {
  const headers = session ? { Authorization: `Bearer ${session.token}` } : {};
  return (await fetch("healthz", { headers, cache: "no-store" })).json();
}

async function pollHealth() {
  const line = document.getElementById("health");
  for (;;) {
    try {
      line.textContent = describeHealth(await fetchHealth());
    } catch (error) {
      line.textContent = "health: server not answering";
    }
    await new Promise((resolve) => setTimeout(resolve, 5000));
  }
}

function say(text) {
  document.getElementById("connection").textContent = text;
}

/** Back to the login form: the token is forgotten, the page emptied. */
function logOut(reason) {
  if (session) {
    session.abort.abort();
    clearInterval(session.ticker);
    session = null;
  }
  forgetToken();
  render(new DashboardState());
  document.getElementById("login").hidden = false;
  document.getElementById("session").hidden = true;
  say(reason);
}

async function connect(token) {
  logOut("connecting...");
  keepToken(token);
  document.getElementById("login").hidden = true;
  const state = new DashboardState();
  const current = { token, abort: new AbortController(), ticker: setInterval(() => render(state), 1000) };
  session = current;
  const live = (status) => {
    if (status === 401) logOut("the token was refused");
    return session === current;
  };
  let delay = 1;
  while (live(0)) {
    const attempt = new AbortController(); // events first, so none is missed after the snapshot
    current.abort.signal.addEventListener("abort", () => attempt.abort());
    const following = followEvents("events", token, (event) => {
      delay = 1;
      state.apply(event);
      render(state);
    }, attempt.signal).catch(() => 0);
    let status;
    try {
      const snapshot = await fetchJson("state", token, attempt.signal);
      status = snapshot.status;
      if (status === 200) {
        state.load(snapshot.body);
        render(state);
        say("connected");
        document.getElementById("session").hidden = false;
        status = await following;
      }
    } catch (error) {
      status = 0;
    }
    attempt.abort();
    if (!live(status)) return;
    say(`disconnected; retrying in ${delay} s`);
    await new Promise((resolve) => setTimeout(resolve, delay * 1000));
    delay = Math.min(delay * 2, 30);
  }
}

function start() {
  const form = document.getElementById("login");
  form.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    const token = document.getElementById("token").value.trim();
    document.getElementById("token").value = "";
    if (token) connect(token);
  });
  document.getElementById("logout").addEventListener("click", () => logOut("logged out"));
  fragmentSettings();
  if (savedToken()) connect(savedToken());
  pollHealth();
}

document.addEventListener("DOMContentLoaded", start);
