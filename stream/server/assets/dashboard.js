// LipForensics Live dashboard: live faces, alerts and stream status from /events.
// The page holds no data. It asks for the bearer token, keeps it in sessionStorage (gone
// with the tab) and sends it as an Authorization header; text from the server is only
// ever set as textContent, never parsed as HTML.
"use strict";

const MAX_ALERTS = 50;
const MAX_STATUS = 30;
const FACE_GONE_AFTER = 10; // seconds without a verdict before a face leaves the table

/** Splits a Server-Sent Events byte stream, fed as text chunks, into parsed `data:` events. */
class EventParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
  }

  push(text) {
    this.buffer += text.replace(/\r\n?/g, "\n");
    let end;
    while ((end = this.buffer.indexOf("\n\n")) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n");
      if (data) this.onEvent(JSON.parse(data));
    }
  }
}

/** What the page shows, updated event by event (no DOM here). */
class DashboardState {
  constructor() {
    this.faces = new Map(); // "stream/face" -> latest verdict
    this.alerts = []; // newest first
    this.status = []; // newest first
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

  apply(event) {
    if (typeof event.wall_time === "number") this.skew = Date.now() / 1000 - event.wall_time;
    if (event.type === "verdict") {
      this.faces.set(`${event.stream}/${event.face}`, event);
    } else if (event.type === "alert") {
      this.faces.set(`${event.stream}/${event.face}`, event);
      this.alerts.unshift(event);
      this.alerts.length = Math.min(this.alerts.length, MAX_ALERTS);
    } else if (event.type === "status") {
      this.status.unshift(event);
      this.status.length = Math.min(this.status.length, MAX_STATUS);
      if (event.status === "ended") {
        for (const key of [...this.faces.keys()]) {
          if (key.startsWith(`${event.stream}/`)) this.faces.delete(key);
        }
      }
    }
  }
}

/**
 * Reads `url` (an SSE endpoint) with the bearer token until it ends or `signal` aborts.
 * Resolves to the HTTP status: 200 when the stream ran and ended, 401 for a bad token.
 */
async function followEvents(url, token, onEvent, signal) {
  const response = await fetch(url, {
    headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
    cache: "no-store",
    signal,
  });
  if (!response.ok) return response.status;
  const parser = new EventParser(onEvent);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return response.status;
    parser.push(value);
  }
}

// ---- the page (browsers only) -------------------------------------------------------

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function seconds(pts) {
  return `${pts[0].toFixed(1)}-${pts[1].toFixed(1)} s`;
}

function clock(wallTime) {
  return new Date(wallTime * 1000).toLocaleTimeString();
}

function render(state) {
  const faces = document.getElementById("faces");
  faces.replaceChildren();
  const shown = state.currentFaces(state.serverNow());
  shown.sort((a, b) => a.stream.localeCompare(b.stream) || a.face - b.face);
  for (const event of shown) {
    const row = faces.insertRow();
    cell(row, event.stream);
    cell(row, String(event.face));
    cell(row, event.level, `level-${event.level}`);
    cell(row, event.logit.toFixed(2));
    cell(row, event.probability.toFixed(3));
    cell(row, seconds(event.pts));
  }
  const alerts = document.getElementById("alerts");
  alerts.replaceChildren();
  for (const event of state.alerts) {
    const row = alerts.insertRow();
    cell(row, clock(event.wall_time));
    cell(row, event.stream);
    cell(row, String(event.face));
    cell(row, seconds(event.pts));
    cell(row, event.logit.toFixed(2));
    cell(row, event.id);
  }
  const status = document.getElementById("status");
  status.replaceChildren();
  for (const event of state.status) {
    const row = status.insertRow();
    cell(row, event.stream);
    cell(row, event.status, `status-${event.status}`);
    cell(row, event.detail || "");
  }
}

/** One line from /healthz: "ok", or "degraded: " and the reasons. */
function describeHealth(health) {
  return health.status === "ok" ? "health: ok" : `health: ${health.status}: ${health.reasons.join("; ")}`;
}

async function pollHealth() {
  const line = document.getElementById("health");
  for (;;) {
    try {
      line.textContent = describeHealth(await (await fetch("healthz", { cache: "no-store" })).json());
    } catch (error) {
      line.textContent = "health: server not answering";
    }
    await new Promise((resolve) => setTimeout(resolve, 5000));
  }
}

function say(text) {
  document.getElementById("connection").textContent = text;
}

let ticker = null;

async function connect(token) {
  const state = new DashboardState();
  clearInterval(ticker); // one state on the page: the newest connection's
  ticker = setInterval(() => render(state), 1000); // faces leave the table when all is quiet
  let delay = 1;
  for (;;) {
    say("connecting...");
    let status;
    try {
      status = await followEvents("events", token, (event) => {
        say("live");
        delay = 1;
        state.apply(event);
        render(state);
      });
    } catch (error) {
      status = 0;
    }
    if (status === 401) {
      sessionStorage.removeItem("lipforensics-token");
      say("the token was refused");
      document.getElementById("login").hidden = false;
      return;
    }
    say(`disconnected; retrying in ${delay} s`);
    await new Promise((resolve) => setTimeout(resolve, delay * 1000));
    delay = Math.min(delay * 2, 30);
  }
}

function start() {
  const form = document.getElementById("login");
  const saved = sessionStorage.getItem("lipforensics-token");
  form.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    const token = document.getElementById("token").value.trim();
    if (!token) return;
    sessionStorage.setItem("lipforensics-token", token);
    form.hidden = true;
    connect(token);
  });
  if (saved) {
    form.hidden = true;
    connect(saved);
  }
  pollHealth();
}

if (typeof document !== "undefined") {
  document.addEventListener("DOMContentLoaded", start);
}
if (typeof module !== "undefined") {
  module.exports = { EventParser, DashboardState, followEvents };
}
