// LipForensics Live: what the pages share. Server-Sent Events read with the bearer token,
// the token kept for the tab, level badges and the probability chart (plain SVG). Text
// from the server is only ever set as textContent, never parsed as HTML.
"use strict";

const TOKEN_KEY = "lipforensics-token";
const CHART_SECONDS = 60; // the chart shows the last minute of windows
const SVG = "http://www.w3.org/2000/svg";

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

/** GET `url` with the bearer token: `{status, body}` (body parsed as JSON when 200). */
async function fetchJson(url, token, signal) {
  const response = await fetch(url, {
    headers: { Authorization: `Bearer ${token}` }, cache: "no-store", signal,
  });
  return { status: response.status, body: response.ok ? await response.json() : null };
}

/**
 * Settings from the URL fragment (`#token=T&source=camera`; the fragment never reaches the
 * server). The token is moved into sessionStorage (gone with the tab) and off the URL.
 */
function fragmentSettings() {
  const settings = new URLSearchParams(location.hash.slice(1));
  if (settings.get("token")) {
    sessionStorage.setItem(TOKEN_KEY, settings.get("token"));
    settings.delete("token");
    const rest = settings.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  }
  return settings;
}

function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

function keepToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

/** A coloured badge for a level (clear, suspicious, alert). */
function badge(level) {
  const span = document.createElement("span");
  span.className = `badge level-${level}`;
  span.textContent = level;
  return span;
}

/** What a verdict says about its window, in words: "25 fps · face 113 px · a verdict every
 * 0.2 s" (longer while a crowded stream's faces take turns), then a badge per caveat (too
 * small, low frame rate, face cut), or nothing for an offline verdict. */
function qualityNote(event) {
  const note = document.createElement("span");
  note.className = "quality";
  if (event.fps === undefined) return note;
  const every = event.interval ? ` · a verdict every ${event.interval.toFixed(1)} s` : "";
  note.textContent = `${event.fps.toFixed(0)} fps · face ${event.face_px} px${every}`;
  for (const caveat of event.caveats || []) {
    const mark = document.createElement("span");
    mark.className = "badge caveat";
    mark.textContent = caveat.replaceAll("_", " ");
    mark.title = "this window cannot raise an alert on its own";
    note.append(" ", mark);
  }
  return note;
}

const THUMBNAIL_SECONDS = 3; // a face's picture is fetched again at most this often
const thumbnails = new Map(); // "stream/face" -> {url, at, pending}

/** An <img> of the face's latest picture (`thumbnail.png`, fetched with the token, kept
 * as an object URL and refreshed at most every few seconds), so a person can tell which
 * participant of a call the card is about. */
function faceThumbnail(stream, face, token) {
  const image = document.createElement("img");
  image.className = "thumbnail";
  image.alt = `${stream} face ${face}`;
  const key = `${stream}/${face}`;
  const known = thumbnails.get(key) || { url: null, at: 0, pending: false };
  thumbnails.set(key, known);
  image.hidden = !known.url; // nothing to show until the first picture came
  if (known.url) image.src = known.url;
  const now = Date.now() / 1000;
  if (!known.pending && now - known.at >= THUMBNAIL_SECONDS) {
    known.pending = true;
    const query = `stream=${encodeURIComponent(stream)}&face=${encodeURIComponent(face)}`;
    fetch(`thumbnail.png?${query}`, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" })
      .then((response) => (response.ok ? response.blob() : null))
      .then((blob) => {
        if (!blob) return;
        if (known.url) URL.revokeObjectURL(known.url);
        known.url = URL.createObjectURL(blob);
        image.src = known.url;
        image.hidden = false;
      })
      .catch(() => {})
      .finally(() => {
        known.pending = false;
        known.at = Date.now() / 1000;
      });
  }
  return image;
}

function streamTime(pts) {
  return `${pts[0].toFixed(1)}-${pts[1].toFixed(1)} s`;
}

/** A face's window probabilities, `[wallTime, probability]`, over the last minute. */
class History {
  constructor(points = []) {
    this.points = points.slice();
  }

  add(wallTime, probability) {
    this.points.push([wallTime, probability]);
    while (this.points.length && this.points[0][0] < wallTime - CHART_SECONDS) this.points.shift();
  }
}

/** Log-odds of a probability (clamped away from 0 and 1): the chart's vertical scale. */
function logOdds(p) {
  const q = Math.min(Math.max(p, 1e-12), 1 - 1e-12);
  return Math.log(q / (1 - q));
}

/**
 * An SVG chart of `points` (`[wallTime, probability]`) over the minute before `now` (or
 * since the first point, at least 10 s), with the suspicious and alert thresholds
 * (probabilities) as dashed lines. Probabilities are drawn on a log-odds scale, so that
 * thresholds near 1 (calibrated ones often are) stay apart from ordinary windows.
 */
function probabilityChart(points, thresholds, now) {
  const width = 360;
  const height = 90;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "chart");
  const first = points.length ? points[0][0] : now;
  const span = Math.min(Math.max(now - first, 10), CHART_SECONDS);
  const shown = points.filter(([t]) => t >= now - span);
  const levels = [...shown.map(([, p]) => logOdds(p)), ...Object.values(thresholds || {}).map(logOdds)];
  const low = Math.min(-4, ...levels) - 1;
  const high = Math.max(4, ...levels) + 1;
  const x = (t) => (width * (t - (now - span))) / span;
  const y = (p) => height - ((height - 4) * (logOdds(p) - low)) / (high - low) - 2;
  const text = (content, left, top, className) => {
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", String(left));
    label.setAttribute("y", String(top));
    label.setAttribute("class", className);
    label.textContent = content;
    svg.append(label);
  };
  for (const [name, value] of Object.entries(thresholds || {})) {
    const line = document.createElementNS(SVG, "line");
    line.setAttribute("x1", "0");
    line.setAttribute("x2", String(width));
    line.setAttribute("y1", y(value).toFixed(1));
    line.setAttribute("y2", y(value).toFixed(1));
    line.setAttribute("class", `threshold threshold-${name}`);
    svg.append(line);
    text(name, width - 4, y(value) - 2, `label label-${name}`);
  }
  text(`last ${Math.round(span)} s`, 4, height - 4, "span");
  text("p 0.5", 4, y(0.5) - 2, "span");
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", shown.map(([t, p]) => `${x(t).toFixed(1)},${y(p).toFixed(1)}`).join(" "));
  line.setAttribute("class", "probability");
  svg.append(line);
  svg.dataset.points = String(shown.length);
  return svg;
}
