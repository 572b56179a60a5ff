// Runs the dashboard's own script (stream/server/assets/dashboard.js) under Node.js for
// tests/test_dashboard.py. Usage:
//   node dashboard_client.js SCRIPT follow URL TOKEN COUNT  -> follows URL until COUNT events
//   node dashboard_client.js SCRIPT parse                   -> parser and state on fixed input
// Prints one JSON object.
"use strict";

const [script, mode, url, token, count] = process.argv.slice(2);
const { EventParser, DashboardState, followEvents } = require(script);

function summary(state, extra) {
  return JSON.stringify({
    ...extra,
    faces: Object.fromEntries(state.faces),
    alerts: state.alerts,
    status: state.status,
  });
}

if (mode === "follow") {
  const state = new DashboardState();
  const abort = new AbortController();
  let seen = 0;
  const onEvent = (event) => {
    state.apply(event);
    seen += 1;
    if (seen >= Number(count)) abort.abort();
  };
  followEvents(url, token, onEvent, abort.signal)
    .then((http) => console.log(summary(state, { http, seen })))
    .catch((error) => {
      if (error.name !== "AbortError") throw error;
      console.log(summary(state, { http: "aborted after enough events", seen }));
    });
} else {
  const events = [];
  const parser = new EventParser((event) => events.push(event));
  const stream =
    ": connected\r\n\r\n" +
    'data: {"type": "status", "stream": "a", "status": "connected", "detail": ""}\n\n' +
    ": keep-alive\n\n" +
    'data: {"type": "verdict", "stream": "a", "face": 0, "pts": [0, 1], "logit": 1.5,\n' +
    'data: "probability": 0.8, "level": "clear"}\r\n\r\n' +
    'data: {"type": "alert", "stream": "b", "face": 2, "pts": [3, 4], "logit": 9, "id": "x",\n' +
    'data: "wall_time": 100}\n\n' +
    'data: {"type": "verdict", "stream": "b", "face": 3, "pts": [3, 4], "logit": 1, "wall_time": 115}\n\n' +
    'data: {"type": "status", "stream": "a", "status": "ended", "detail": ""}\n\n';
  for (let at = 0; at < stream.length; at += 7) parser.push(stream.slice(at, at + 7));
  const state = new DashboardState();
  events.forEach((event) => state.apply(event));
  const latest = Math.max(...events.map((event) => event.wall_time || 0));
  const current = state.currentFaces(latest).map((event) => `${event.stream}/${event.face}`);
  console.log(summary(state, { events, current }));
}
