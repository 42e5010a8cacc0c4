// TV mode: sign-in by device code (RFC 8628, approved from a phone), then a ten-foot page
// driven by arrow keys and Enter, a simulated player obeying remote commands and reporting
// its progress over the device socket.

import { api, claims, deviceCode, registerDevice, saveSession, session, title, tokenRequest, userPath } from "./api.js";
import { applyWatchlist, currentSocket, listen, onLeave, startSocket } from "./main.js";
import { clock, h, notify, progressBar, replace, showError } from "./ui.js";

const REPORT_EVERY_S = 2; // progress reports while playing: the phone's bar moves this often

export async function tvPage(main) {
  document.title = "TV · Media Gateway";
  const current = session();
  if (!current || current.mode !== "tv") return codeSignIn(main);
  return tvHome(main);
}

// ---------------------------------------------------------------- device code sign-in

async function codeSignIn(main) {
  const status = h("p", { id: "tv-status", "aria-live": "polite" }, "Asking for a code…");
  const codeBox = h("p", { class: "user-code", id: "user-code" });
  const where = h("p", {});
  replace(main, h("h1", {}, "Sign in this TV"), h("section", { class: "card" }, where, codeBox, status));
  let stopped = false;
  let timer = null;
  onLeave(() => {
    stopped = true;
    clearTimeout(timer);
  });
  const start = async () => {
    let grant;
    try {
      grant = await deviceCode({ client_id: "mgw-web-tv", device_name: "TV (browser)", platform: "web", app_version: "1.0" });
    } catch (error) {
      status.textContent = error.message;
      if (error.status === 429 || error.status >= 500) timer = setTimeout(start, (error.retryAfter || 5) * 1000);
      return;
    }
    replace(
      where,
      "On your phone, open ",
      h("a", { href: grant.verification_uri_complete, target: "_blank", rel: "noopener" }, grant.verification_uri),
      " and enter this code:",
    );
    codeBox.textContent = grant.user_code;
    status.textContent = "Waiting for your phone…";
    let interval = grant.interval;
    const expires = Date.now() + grant.expires_in * 1000;
    // RFC 8628's own loop: the token endpoint is asked every `interval` seconds until the
    // phone decides; this is the sign-in protocol, not state polling.
    const poll = async () => {
      if (stopped) return;
      if (Date.now() > expires) return start();
      try {
        const tokens = await tokenRequest({ grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: grant.device_code });
        saveSession({
          mode: "tv",
          user: claims(tokens.access_token).sub,
          access_token: tokens.access_token,
          refresh_token: tokens.refresh_token,
          device_id: grant.device_id,
          device_type: "tv",
          region: "US",
        });
        // The approval registered the TV; this says it obeys a remote.
        await registerDevice({
          device_type: "tv",
          platform: "web",
          app_version: "1.0",
          device_name: "TV (browser)",
          capabilities: { remote_controllable: true, max_resolution: "fhd" },
        });
        // The route runs again, now signed in: header, socket and the TV's page.
        window.dispatchEvent(new HashChangeEvent("hashchange"));
        return;
      } catch (error) {
        const code = error.code;
        if (code === "authorization_pending") timer = setTimeout(poll, interval * 1000);
        else if (code === "slow_down") {
          interval += 5;
          timer = setTimeout(poll, interval * 1000);
        } else if (code === "expired_token") start();
        else if (code === "access_denied") {
          status.textContent = "The sign-in was refused on the phone.";
          replace(where, h("button", { type: "button", onclick: start }, "Get a new code"));
          codeBox.textContent = "";
        } else {
          status.textContent = error.message;
          timer = setTimeout(poll, interval * 1000);
        }
      }
    };
    timer = setTimeout(poll, interval * 1000);
  };
  start();
}

// ---------------------------------------------------------------- the TV's page

const player = { content_id: null, title: "", position: 0, duration: 0, state: "stopped", sinceReport: 0 };

async function tvHome(main) {
  const socket = startSocket();
  const nowTitle = h("p", { id: "now-title", class: "now-title" });
  const nowState = h("p", { id: "now-state" });
  const nowBar = h("div", { id: "now-bar" });
  // What the remote last asked, so a person sees the TV obeyed (and `mgw bench web` times it).
  const remoteSaid = h("p", { id: "remote-said", class: "muted", "aria-live": "polite" });
  const playPause = h("button", { type: "button", "data-row": "0" }, "Play");
  const controls = h(
    "div",
    { class: "tv-row", role: "group", "aria-label": "Player" },
    playPause,
    h("button", { type: "button", "data-row": "0", onclick: () => seek(player.position - 30) }, "Back 30 s"),
    h("button", { type: "button", "data-row": "0", onclick: () => seek(player.position + 30) }, "Forward 30 s"),
    h("button", { type: "button", "data-row": "0", onclick: () => setState("stopped") }, "Stop"),
  );
  const nowPanel = h("section", { id: "now-playing", "aria-labelledby": "h-now", class: "card" }, h("h2", { id: "h-now" }, "Now playing"), nowTitle, nowState, nowBar, remoteSaid, controls);
  const continueRow = h("ul", { id: "continue", class: "tv-row tiles" });
  const watchRow = h("ul", { id: "watchlist", class: "tv-row tiles" });
  const recRow = h("ul", { id: "recommendations", class: "tv-row tiles" });
  replace(
    main,
    h("h1", { class: "visually-hidden" }, "TV"),
    nowPanel,
    h("section", { "aria-labelledby": "h-continue" }, h("h2", { id: "h-continue" }, "Continue watching"), continueRow),
    h("section", { "aria-labelledby": "h-watchlist" }, h("h2", { id: "h-watchlist" }, "Watchlist"), watchRow),
    h("section", { "aria-labelledby": "h-recs" }, h("h2", { id: "h-recs" }, "For you tonight"), recRow),
  );
  playPause.addEventListener("click", () => setState(player.state === "playing" ? "paused" : "playing"));

  const drawPlayer = () => {
    if (!player.content_id) {
      nowTitle.textContent = "Nothing playing. Pick a title below, or send one from your phone.";
      nowState.textContent = "";
      replace(nowBar);
      return;
    }
    nowTitle.textContent = player.title;
    nowState.textContent = `${player.state === "playing" ? "Playing" : player.state === "paused" ? "Paused" : "Stopped"} · ${clock(player.position)} of ${clock(player.duration)}`;
    replace(nowBar, progressBar(player.position, player.duration, "Position"));
    playPause.textContent = player.state === "playing" ? "Pause" : "Play";
  };

  const report = () => {
    if (!player.content_id) return;
    player.sinceReport = 0;
    socket
      .progress(player.content_id, {
        position_seconds: player.position,
        duration_seconds: player.duration,
        state: player.state,
      })
      .catch((error) => showError(error));
  };
  const announce = () => {
    socket.setNowPlaying(player.content_id ? { content_id: player.content_id, position_seconds: player.position, state: player.state } : null);
    report();
    drawPlayer();
  };
  function setState(state) {
    if (!player.content_id) return;
    player.state = state;
    announce();
  }
  function seek(position) {
    if (!player.content_id) return;
    player.position = Math.max(0, Math.min(player.duration, position));
    report();
    drawPlayer();
  }
  async function load(contentId, start = 0) {
    let t = null;
    try {
      t = await title(contentId);
    } catch (error) {
      showError(error);
      return;
    }
    Object.assign(player, {
      content_id: contentId,
      title: t.title,
      duration: (t.runtime_minutes || 60) * 60,
      position: Math.max(0, start),
      state: "playing",
    });
    announce();
  }

  const tick = setInterval(() => {
    if (player.state !== "playing" || !player.content_id) return;
    player.position = Math.min(player.duration, player.position + 1);
    player.sinceReport += 1;
    if (player.position >= player.duration) player.state = "stopped";
    if (player.sinceReport >= REPORT_EVERY_S || player.state === "stopped") report();
    drawPlayer();
  }, 1000);
  onLeave(() => clearInterval(tick));

  listen("command", (message) => {
    // A command is void after expires_at (docs/SYNC.md, "Remote commands").
    if (Date.parse(message.expires_at) < Date.now()) return;
    const command = message.command;
    remoteSaid.dataset.command = message.command_id;
    remoteSaid.textContent = `Remote: ${command.type.replace(/_/g, " ")}`;
    switch (command.type) {
      case "play":
        return setState("playing");
      case "pause":
        return setState("paused");
      case "stop":
        return setState("stopped");
      case "seek":
        return seek(command.position_seconds);
      case "load_content":
        return load(command.content_id, command.start_position || 0);
      default:
        notify(`${command.type.replace(/_/g, " ")} is not supported on this TV.`, "ok");
    }
  });

  const tile = (contentId, extra) =>
    h(
      "li",
      {},
      h(
        "button",
        { type: "button", class: "tile", "data-content": contentId, onclick: () => load(contentId) },
        h("span", { class: "tile-title" }, "…"),
        extra || null,
      ),
    );
  const fillTitles = (row) =>
    row.querySelectorAll("button[data-content]").forEach((b) =>
      title(b.dataset.content)
        .then((t) => {
          b.querySelector(".tile-title").textContent = t.title;
        })
        .catch(() => {
          b.querySelector(".tile-title").textContent = "Unavailable";
        }),
    );
  const empty = (text) => h("li", { class: "muted" }, text);

  let progress = [];
  const drawContinue = () => {
    replace(continueRow, progress.length ? progress.map((e) => tile(e.content_id, progressBar(e.position_seconds, e.duration_seconds, "Watched"))) : empty("Nothing started yet."));
    fillTitles(continueRow);
  };
  const loadContinue = async () => {
    try {
      progress = (await api("GET", userPath("/progress"), { query: { limit: 10 } })).items;
      drawContinue();
    } catch (error) {
      showError(error);
    }
  };
  let watching = [];
  const drawWatchlist = () => {
    replace(watchRow, watching.length ? watching.map((id) => tile(id)) : empty("Add titles from your phone."));
    fillTitles(watchRow);
  };
  const loadWatchlist = async () => {
    try {
      watching = (await api("GET", userPath("/watchlist"))).items.map((i) => i.content_id);
      drawWatchlist();
    } catch (error) {
      showError(error);
    }
  };
  const loadRecommendations = async () => {
    try {
      const answer = await api("GET", "/api/v1/recommendations", {
        query: { device: "tv", region: session().region || "US", tz: Intl.DateTimeFormat().resolvedOptions().timeZone },
      });
      replace(recRow, answer.recommendations.length ? answer.recommendations.map((r) => tile(r.canonical_id, h("span", { class: "reason" }, r.reasons.join(" · ")))) : empty("No recommendations yet."));
      fillTitles(recRow);
    } catch (error) {
      showError(error);
    }
  };
  listen("watchlist", (message) => {
    watching = applyWatchlist(watching, message);
    drawWatchlist();
  });
  listen("progress", (message) => {
    const entry = progress.find((e) => e.content_id === message.content_id);
    if (!entry || message.up_next) return loadContinue();
    // The TV's own reports come back too; only the bar moves.
    Object.assign(entry, { position_seconds: message.position_seconds, duration_seconds: message.duration_seconds });
    const bar = continueRow.querySelector(`button[data-content="${message.content_id}"] .bar`);
    if (bar) bar.replaceWith(progressBar(entry.position_seconds, entry.duration_seconds, "Watched"));
  });
  listen("resync", () => Promise.all([loadContinue(), loadWatchlist()]));

  // Arrow keys move between the focusable controls of a row (left/right) and between rows
  // (up/down); Enter activates (a button's own behaviour).
  const keys = (event) => {
    if (!["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].includes(event.key)) return;
    const rows = [...main.querySelectorAll(".tv-row")]
      .map((r) => [...r.querySelectorAll("button:not([disabled])")])
      .filter((r) => r.length);
    if (!rows.length) return;
    let r = rows.findIndex((row) => row.includes(document.activeElement));
    let c = r >= 0 ? rows[r].indexOf(document.activeElement) : 0;
    if (r < 0) r = 0;
    else if (event.key === "ArrowLeft") c = Math.max(0, c - 1);
    else if (event.key === "ArrowRight") c = Math.min(rows[r].length - 1, c + 1);
    else if (event.key === "ArrowUp") r = Math.max(0, r - 1);
    else r = Math.min(rows.length - 1, r + 1);
    event.preventDefault();
    rows[r][Math.min(c, rows[r].length - 1)].focus();
  };
  document.addEventListener("keydown", keys);
  onLeave(() => document.removeEventListener("keydown", keys));

  drawPlayer();
  controls.querySelector("button").focus();
  if (currentSocket()) await Promise.all([loadContinue(), loadWatchlist(), loadRecommendations()]);
}
