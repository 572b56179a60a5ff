// LipForensics Live publisher: this browser sends its camera, or a shared tab or window
// (a video call), to the server over WHIP and shows the verdicts of its own stream.
// `/publish#token=TOKEN&source=camera|screen` starts at once (kiosks, tests); the fragment
// never reaches the server. The token goes only into Authorization headers (live.js).
"use strict";

let publishing = null; // {token, pc, stream, location, streams, abort}

function show(id, text) {
  document.getElementById(id).textContent = text;
}

/** The camera, or a tab or window the person picks (the call they are in). A captured
 * surface's track is hinted "detail" by default, and the encoder then keeps resolution and
 * gives up frame rate when bandwidth runs short: lips need the frames, so say "motion". */
async function capture(source) {
  if (source === "camera") return navigator.mediaDevices.getUserMedia({ video: { frameRate: 25 }, audio: false });
  const media = await navigator.mediaDevices.getDisplayMedia({
    video: { frameRate: 25 }, audio: false, selfBrowserSurface: "exclude", surfaceSwitching: "include",
  });
  media.getVideoTracks()[0].contentHint = "motion";
  return media;
}

function iceGathered(pc, timeoutMs = 5000) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, timeoutMs); // send the candidates found so far
  });
}

/** The codec the browser is sending video with, e.g. "video/VP8", once frames flow. */
async function sendingCodec(pc) {
  for (let tries = 0; tries < 20; tries += 1) {
    const stats = await pc.getStats();
    for (const report of stats.values()) {
      if (report.type === "outbound-rtp" && report.kind === "video" && report.codecId) {
        const codec = stats.get(report.codecId);
        if (codec) return codec.sdpFmtpLine ? `${codec.mimeType} (${codec.sdpFmtpLine})` : codec.mimeType;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return "unknown";
}

/** What the encoder is sending now, e.g. "1280x720, 24 fps, 560 kbit/s", and why it is
 * holding back, if it is (bandwidth, cpu); every two seconds until publishing stops. */
async function showSending(current) {
  let before = null;
  while (publishing === current) {
    const stats = await current.pc.getStats();
    for (const report of stats.values()) {
      if (report.type !== "outbound-rtp" || report.kind !== "video") continue;
      const kbps = before ? (8 * (report.bytesSent - before.bytesSent)) / (report.timestamp - before.timestamp) : 0;
      const limit = report.qualityLimitationReason && report.qualityLimitationReason !== "none"
        ? ` (limited by ${report.qualityLimitationReason})` : "";
      if (report.frameWidth) {
        show("sending", `${report.frameWidth}x${report.frameHeight}, ${Math.round(report.framesPerSecond || 0)} fps, ${Math.round(kbps)} kbit/s${limit}`);
      }
      before = report;
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function renderFaces(faces, histories, thresholds) {
  const now = Math.max(0, ...[...faces.values()].map((event) => event.wall_time));
  const cards = [...faces.values()].sort((a, b) => a.face - b.face).map((event) => {
    const card = document.createElement("article");
    card.className = "face";
    card.dataset.face = String(event.face);
    const title = document.createElement("h3");
    const name = document.createElement("span");
    name.textContent = `face ${event.face}`;
    const probability = document.createElement("span");
    probability.className = "probability-value";
    probability.textContent = `p = ${event.probability.toFixed(3)} (${streamTime(event.pts)})`;
    title.append(name, badge(event.level), probability);
    const who = publishing ? [faceThumbnail(event.stream, event.face, publishing.token)] : [];
    card.append(title, ...who, qualityNote(event), probabilityChart(histories.get(event.face).points, thresholds, now));
    return card;
  });
  document.getElementById("faces").replaceChildren(...cards);
}

/** Follow /events for this page's own streams until stopped. */
async function followOwnStream(current) {
  const faces = new Map(); // face -> latest verdict
  const histories = new Map(); // face -> History
  let verdicts = 0;
  const snapshot = await fetchJson("state", current.token, current.abort.signal);
  const thresholds = snapshot.body ? snapshot.body.thresholds : {};
  await followEvents("events", current.token, (event) => {
    if (!current.streams.includes(event.stream)) return;
    if (event.type === "verdict") {
      verdicts += 1;
      show("verdicts", String(verdicts));
      if (!histories.has(event.face)) histories.set(event.face, new History());
      histories.get(event.face).add(event.wall_time, event.probability);
      faces.set(event.face, event);
      renderFaces(faces, histories, thresholds);
    } else if (event.type === "status") {
      show("state", `${event.status}: ${event.detail}`);
    }
  }, current.abort.signal);
}

async function publish(token, source) {
  document.getElementById("login").hidden = true;
  show("connection", "starting...");
  const media = await capture(source);
  const track = media.getVideoTracks()[0];
  document.getElementById("preview").srcObject = media;
  const pc = new RTCPeerConnection(); // host candidates only: no STUN server
  pc.addTransceiver(track, { direction: "sendonly", streams: [media] });
  await pc.setLocalDescription(await pc.createOffer());
  await iceGathered(pc);
  const response = await fetch("whip", {
    method: "POST",
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
  });
  const answer = await response.text();
  if (response.status !== 201) {
    pc.close();
    media.getTracks().forEach((t) => t.stop());
    throw Object.assign(new Error(`the server answered ${response.status}: ${answer.trim()}`), { status: response.status });
  }
  const streams = (response.headers.get("X-Stream-Id") || "").split(", ");
  const current = {
    token, pc, media, location: response.headers.get("Location"), streams, abort: new AbortController(),
  };
  publishing = current;
  keepToken(token);
  show("stream", streams.join(", "));
  pc.addEventListener("connectionstatechange", () => show("state", pc.connectionState));
  track.addEventListener("ended", () => stop("the shared source ended"));
  followOwnStream(current).catch(() => {});
  await pc.setRemoteDescription({ type: "answer", sdp: answer });
  document.getElementById("stop").disabled = false;
  show("connection", `publishing ${source}`);
  show("codec", await sendingCodec(pc));
  showSending(current).catch(() => {});
}

/** End the WHIP session (DELETE on its Location) and release the camera or screen. */
async function stop(reason, keepalive = false) {
  const current = publishing;
  if (!current) return;
  publishing = null;
  document.getElementById("stop").disabled = true;
  let ended = "";
  try {
    const response = await fetch(current.location, {
      method: "DELETE", headers: { Authorization: `Bearer ${current.token}` }, keepalive,
    });
    ended = ` (session ended: ${response.status})`;
  } catch (error) {
    ended = " (the server could not be told)";
  }
  current.abort.abort();
  current.pc.close();
  current.media.getTracks().forEach((t) => t.stop());
  show("state", "ended");
  show("connection", `${reason}${ended}`);
}

function start() {
  const form = document.getElementById("login");
  const begin = (token, source) => publish(token, source).catch((error) => {
    if (error.status === 401) forgetToken();
    form.hidden = false;
    show("state", "error");
    show("connection", String(error.message || error));
  });
  form.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    const token = document.getElementById("token").value.trim();
    if (token) begin(token, document.getElementById("source").value);
  });
  document.getElementById("stop").addEventListener("click", () => stop("stopped"));
  window.addEventListener("pagehide", () => stop("page closed", true));
  const settings = fragmentSettings();
  const source = settings.get("source");
  if (source) document.getElementById("source").value = source === "camera" ? "camera" : "screen";
  if (savedToken() && source) begin(savedToken(), document.getElementById("source").value);
}

document.addEventListener("DOMContentLoaded", start);
