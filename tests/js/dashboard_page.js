// Opens the serve dashboard from a real server in jsdom, logs in with TOKEN, waits until
// the tables hold COUNT rows in all and the health line is shown, and prints what a viewer
// would see as JSON.
// Usage: node dashboard_page.js BASE_URL TOKEN COUNT
"use strict";

const { JSDOM } = require("jsdom");

const [base, token, count] = process.argv.slice(2);

async function text(path) {
  const response = await fetch(new URL(path, base));
  return response.text();
}

function rows(document, id) {
  return [...document.getElementById(id).rows].map((row) =>
    [...row.cells].map((cell) => ({ text: cell.textContent, class: cell.className })),
  );
}

async function main() {
  const page = await text("/dashboard");
  const dom = new JSDOM(page, { url: new URL("/dashboard", base).href, runScripts: "outside-only" });
  const { window } = dom;
  window.fetch = (path, options) => fetch(new URL(path, window.location.href), options);
  window.TextDecoderStream = TextDecoderStream;
  window.eval(await text("/dashboard.js"));
  window.document.dispatchEvent(new window.Event("DOMContentLoaded"));
  const document = window.document;
  document.getElementById("token").value = token;
  document.getElementById("login").dispatchEvent(new window.Event("submit", { cancelable: true }));
  const deadline = Date.now() + 30000;
  const shown = () => ["faces", "alerts", "status"].map((id) => rows(document, id).length);
  const connection = () => document.getElementById("connection").textContent;
  while (Date.now() < deadline) {
    const total = shown().reduce((a, b) => a + b, 0);
    const healthShown = document.getElementById("health").textContent !== "";
    if ((total >= Number(count) && healthShown) || connection() === "the token was refused") break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  console.log(
    JSON.stringify({
      connection: connection(),
      loginHidden: document.getElementById("login").hidden,
      faces: rows(document, "faces"),
      alerts: rows(document, "alerts"),
      status: rows(document, "status"),
      images: document.querySelectorAll("img").length,
      health: document.getElementById("health").textContent,
      stored: window.sessionStorage.getItem("lipforensics-token"),
    }),
  );
  window.close();
  process.exit(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
