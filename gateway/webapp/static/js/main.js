// The shell: routes (the URL fragment), the session, the device socket, and the phone's pages.
// The TV's page is tv.js. Every call is to the public API (docs/WEB_APP.md lists them).

import {
  api,
  claims,
  events,
  newId,
  registerDevice,
  session,
  saveSession,
  signInDev,
  signOut,
  title,
  userPath,
} from "./api.js";
import { DeviceSocket } from "./realtime.js";
import {
  clearNotice,
  clock,
  date,
  genre,
  h,
  intentWords,
  notify,
  offer,
  platform,
  price,
  progressBar,
  replace,
  runtime,
  showError,
} from "./ui.js";
import { tvPage } from "./tv.js";

const view = () => document.getElementById("view");
let socket = null;
let cleanups = [];

// Listen to a realtime message kind for the life of the current page.
export function listen(kind, handler) {
  if (!socket) return;
  const wrapped = (event) => handler(event.detail);
  socket.addEventListener(kind, wrapped);
  cleanups.push(() => socket && socket.removeEventListener(kind, wrapped));
}

export function onLeave(fn) {
  cleanups.push(fn);
}

export function currentSocket() {
  return socket;
}

export function startSocket() {
  if (socket) return socket;
  socket = new DeviceSocket();
  socket.addEventListener("status", (event) => {
    const el = document.getElementById("live");
    el.textContent = event.detail.text;
    el.dataset.live = event.detail.live ? "yes" : "no";
  });
  socket.addEventListener("revoked", () => endSession("This browser was removed from your devices. Sign in again to use it."));
  // The result of a command this device sent: said in words, wherever the user is.
  socket.addEventListener("command_result", (event) => {
    const result = event.detail;
    if (result.status === "delivered") notify(`Sent to ${deviceName(result.target_device_id)}.`, "ok");
    else notify(result.message || `The command was not delivered (${result.error}).`);
  });
  // A watchlist alert (docs/NOTIFICATIONS.md): said where the user is, whatever the page.
  socket.addEventListener("notification", (event) => {
    const n = event.detail.notification;
    const words = { arrived: "is now on", leaving_soon: "is leaving", price_drop: "costs less on" };
    notify(`${n.title} ${words[n.kind] || "changed on"} ${platform(n.platform)}.`, "ok");
  });
  socket.open();
  return socket;
}

const deviceNames = new Map();
function deviceName(id) {
  return deviceNames.get(id) || id;
}

// A message for the next page: the route change clears the notices of the page left.
let carried = null;

function endSession(message) {
  carried = message || null;
  if (socket) socket.close();
  socket = null;
  renderHeader();
  location.hash = document.body.classList.contains("tv") ? "#/tv" : "#/signin";
}

events.addEventListener("expired", () => endSession("Your session has ended. Please sign in again."));

function parseRoute() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query] = raw.split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query || "") };
}

function renderHeader() {
  const current = session();
  const who = document.getElementById("who");
  const nav = document.getElementById("nav");
  nav.hidden = !current || current.mode === "tv";
  if (!current) {
    replace(who);
    document.getElementById("live").textContent = "";
    return;
  }
  replace(
    who,
    h("span", {}, `${current.user} · ${current.mode === "tv" ? "TV" : current.device_type}`),
    h(
      "button",
      {
        type: "button",
        class: "link",
        onclick: async () => {
          await signOut();
          endSession();
        },
      },
      "Sign out",
    ),
  );
}

async function route() {
  cleanups.forEach((fn) => fn());
  cleanups = [];
  clearNotice();
  if (carried) notify(carried);
  carried = null;
  renderHeader();
  const { parts, params } = parseRoute();
  const current = session();
  const page = parts[0] || "home";
  const main = view();
  if (page === "tv" || (current && current.mode === "tv")) {
    if (page !== "tv") location.hash = "#/tv";
    document.body.classList.add("tv");
    return tvPage(main);
  }
  document.body.classList.remove("tv");
  if (!current) {
    if (page !== "signin") {
      sessionStorage.setItem("mgw.after", location.hash);
      location.hash = "#/signin";
      return;
    }
    return signInPage(main);
  }
  startSocket();
  const pages = { home: homePage, search: searchPage, title: titlePage, devices: devicesPage, activate: activatePage };
  const render = pages[page] || homePage;
  return render(main, parts.slice(1), params);
}

function heading(text) {
  document.title = `${text} · Media Gateway`;
  return h("h1", { tabindex: "-1" }, text);
}

// ---------------------------------------------------------------- sign-in (phone, tablet, web)

function signInPage(main) {
  const name = h("input", { id: "username", name: "username", autocomplete: "username", required: true, value: "alice" });
  const kind = h(
    "select",
    { id: "device-type", name: "device_type" },
    h("option", { value: "phone" }, "Phone"),
    h("option", { value: "tablet" }, "Tablet"),
    h("option", { value: "web" }, "Computer (web)"),
  );
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    {
      class: "card narrow",
      onsubmit: async (event) => {
        event.preventDefault();
        submit.disabled = true;
        try {
          const tokens = await signInDev(name.value.trim());
          const type = kind.value;
          saveSession({
            mode: "phone",
            user: claims(tokens.access_token).sub,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            device_id: `${type}-${newId().slice(0, 12)}`,
            device_type: type,
            region: "US",
          });
          await registerDevice({
            device_type: type,
            platform: "web",
            app_version: "1.0",
            device_name: { phone: "Phone", tablet: "Tablet", web: "Web browser" }[type],
          });
          const after = sessionStorage.getItem("mgw.after");
          sessionStorage.removeItem("mgw.after");
          location.hash = after && !after.startsWith("#/signin") ? after : "#/";
        } catch (error) {
          showError(error, submit);
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("p", {}, "Development sign-in: any name, no password (the stack runs in dev mode)."),
    h("label", { for: "username" }, "Your name"),
    name,
    h("label", { for: "device-type" }, "This browser is a"),
    kind,
    submit,
  );
  replace(main, heading("Sign in"), form, h("p", {}, h("a", { href: "#/tv" }, "Use this window as a TV instead")));
}

// ---------------------------------------------------------------- home: continue watching, watchlist, recommendations

function titleLink(contentId, fallback) {
  const link = h("a", { href: `#/title/${contentId}` }, fallback || "…");
  title(contentId)
    .then((t) => {
      link.textContent = t.release_year ? `${t.title} (${t.release_year})` : t.title;
    })
    .catch(() => {
      link.textContent = "A title no longer in the catalog";
    });
  return link;
}

// A watchlist message says whether the title is on the list after the merge (in_watchlist):
// the list is kept from it, with no read (docs/SYNC.md, "Channels and messages").
export function applyWatchlist(ids, message) {
  const rest = ids.filter((id) => id !== message.content_id);
  return message.in_watchlist ? [message.content_id, ...rest] : rest;
}

export function progressItem(entry) {
  const label = entry.up_next ? "Up next" : `${clock(entry.position_seconds)} of ${clock(entry.duration_seconds)}`;
  return h(
    "li",
    { "data-content": entry.content_id, class: "progress-item" },
    titleLink(entry.content_id),
    h("span", { class: "muted" }, ` ${label}`),
    progressBar(entry.position_seconds, entry.duration_seconds, "Watched"),
  );
}

async function homePage(main) {
  const current = session();
  const progressList = h("ul", { id: "continue", class: "rows" });
  const watchList = h("ul", { id: "watchlist", class: "rows" });
  const recList = h("ul", { id: "recommendations", class: "rows" });
  const region = h("input", {
    id: "region",
    value: current.region || "US",
    maxlength: "2",
    size: "3",
    pattern: "[A-Za-z]{2}",
    onchange: () => {
      saveSession({ ...session(), region: region.value.toUpperCase() });
      loadRecommendations();
    },
  });
  replace(
    main,
    heading(`Hello, ${current.user}`),
    h("section", { "aria-labelledby": "h-continue" }, h("h2", { id: "h-continue" }, "Continue watching"), progressList),
    h("section", { "aria-labelledby": "h-watchlist" }, h("h2", { id: "h-watchlist" }, "Your watchlist"), watchList),
    h(
      "section",
      { "aria-labelledby": "h-recs" },
      h("h2", { id: "h-recs" }, "Recommended for you now"),
      h("p", {}, h("label", { for: "region" }, "Region "), region),
      recList,
    ),
  );
  let progress = [];
  const drawProgress = () =>
    replace(progressList, progress.length ? progress.map(progressItem) : h("li", { class: "muted" }, "Nothing started yet."));
  const loadProgress = async () => {
    try {
      progress = (await api("GET", userPath("/progress"), { query: { limit: 10 } })).items;
      drawProgress();
    } catch (error) {
      showError(error);
    }
  };
  let watching = [];
  const drawWatchlist = () =>
    replace(
      watchList,
      watching.length
        ? watching.map((id) => h("li", { "data-content": id }, titleLink(id)))
        : h("li", { class: "muted" }, "Your watchlist is empty. Find something with Search."),
    );
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
        query: {
          device: current.device_type,
          region: session().region || "US",
          tz: Intl.DateTimeFormat().resolvedOptions().timeZone,
        },
      });
      replace(
        recList,
        answer.recommendations.length
          ? answer.recommendations.map((r) =>
              h(
                "li",
                { "data-content": r.canonical_id },
                h("a", { href: `#/title/${r.canonical_id}` }, r.title),
                h("span", { class: "muted" }, ` ${r.reasons.join(" · ")}`),
              ),
            )
          : h("li", { class: "muted" }, "No recommendations for this device and region yet."),
      );
    } catch (error) {
      showError(error);
    }
  };
  // Live: a progress report moves its bar in place; a title not shown yet reloads the list.
  listen("progress", (message) => {
    const entry = progress.find((e) => e.content_id === message.content_id);
    if (!entry || message.up_next) return loadProgress();
    Object.assign(entry, {
      position_seconds: message.position_seconds,
      duration_seconds: message.duration_seconds,
      state: message.state,
    });
    drawProgress();
  });
  listen("watchlist", (message) => {
    watching = applyWatchlist(watching, message);
    drawWatchlist();
  });
  listen("resync", () => Promise.all([loadProgress(), loadWatchlist()]));
  await Promise.all([loadProgress(), loadWatchlist(), loadRecommendations()]);
}

// ---------------------------------------------------------------- search

async function searchPage(main, _parts, params) {
  const input = h("input", {
    id: "q",
    type: "search",
    name: "q",
    role: "combobox",
    autocomplete: "off",
    "aria-autocomplete": "list",
    "aria-controls": "suggestions",
    "aria-expanded": "false",
    placeholder: "a title, a person, or “comedies from the 90s”",
    value: params.get("q") || "",
  });
  const list = h("ul", { id: "suggestions", role: "listbox", "aria-label": "Suggestions", hidden: true });
  const intent = h("p", { id: "intent", "aria-live": "polite" });
  const facets = h("div", { id: "facets" });
  const results = h("ol", { id: "results", class: "rows" });
  const go = h("button", { type: "submit" }, "Search");
  const filters = { genres: params.getAll("genre"), platforms: params.getAll("platform"), decade: params.get("decade") };
  let active = -1;
  let items = [];
  let typed = 0;

  const closeList = () => {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  };
  const pick = (s) => {
    closeList();
    if (s.kind === "title") location.hash = `#/title/${s.canonical_id}`;
    else {
      input.value = s.text;
      search();
    }
  };
  const suggest = async () => {
    const text = input.value.trim();
    const mine = ++typed;
    if (!text) return closeList();
    try {
      const answer = await api("GET", "/api/v1/search/suggest", { query: { q: text.slice(0, 100) }, auth: false, device: false });
      if (mine !== typed) return; // a newer keystroke's answer is coming
      items = answer.suggestions;
      replace(
        list,
        items.map((s, i) =>
          h(
            "li",
            { id: `sugg-${i}`, role: "option", "aria-selected": "false", onmousedown: (e) => (e.preventDefault(), pick(s)) },
            s.text,
            h("span", { class: "muted" }, s.kind === "title" ? ` ${s.release_year || ""}` : ` person · ${s.titles} titles`),
          ),
        ),
      );
      list.hidden = !items.length;
      input.setAttribute("aria-expanded", items.length ? "true" : "false");
      active = -1;
    } catch (error) {
      showError(error);
    }
  };
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(suggest, 120); // one request per pause in typing, not per key
  });
  input.addEventListener("keydown", (event) => {
    if (list.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      active = (active + (event.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
      [...list.children].forEach((li, i) => li.setAttribute("aria-selected", i === active ? "true" : "false"));
      input.setAttribute("aria-activedescendant", `sugg-${active}`);
    } else if (event.key === "Enter" && active >= 0) {
      event.preventDefault();
      pick(items[active]);
    } else if (event.key === "Escape") closeList();
  });
  input.addEventListener("blur", () => setTimeout(closeList, 100));

  const facetGroup = (name, counts, selected, toggle) =>
    h(
      "fieldset",
      { class: "facet" },
      h("legend", {}, name),
      Object.entries(counts || {}).map(([value, count]) =>
        h(
          "button",
          { type: "button", "aria-pressed": selected(value) ? "true" : "false", onclick: () => toggle(value) },
          `${name === "Genre" ? genre(value) : name === "Platform" ? platform(value) : value} (${count})`,
        ),
      ),
    );
  const toggleIn = (list_, value) => {
    const i = list_.indexOf(value);
    if (i >= 0) list_.splice(i, 1);
    else list_.push(value);
    search();
  };

  const resultItem = (r) =>
    h(
      "li",
      {},
      h("a", { href: `#/title/${r.canonical_id}` }, r.title),
      h("span", { class: "muted" }, ` ${[r.release_year, r.genres.map(genre).join(", "), r.platforms.map(platform).join(", ")].filter(Boolean).join(" · ")}`),
    );
  // Every page of a search is reachable: "More results" appends the next page of the same
  // query and filters (the pages of one query are stable, docs/DISCOVERY.md).
  let shown = 0;
  const more = h("button", { type: "button", hidden: true, onclick: () => nextPage() }, "More results");
  let lastQuery = null;
  async function nextPage() {
    if (!lastQuery) return;
    more.disabled = true;
    try {
      const page = lastQuery.page + 1;
      const answer = await api("GET", "/api/v1/search", { query: { ...lastQuery, page } });
      lastQuery = { ...lastQuery, page };
      answer.results.forEach((r) => results.append(resultItem(r)));
      shown += answer.results.length;
      more.hidden = !answer.results.length || shown >= answer.total_count;
      more.disabled = false;
    } catch (error) {
      more.disabled = false;
      showError(error, more);
    }
  }

  async function search() {
    closeList();
    const q = input.value.trim();
    if (!q) return;
    go.disabled = true;
    const query = { q, genres: filters.genres.join(",") || null, platforms: filters.platforms.join(",") || null, region: session().region || "US", page: 1 };
    if (filters.decade) {
      const start = Number.parseInt(filters.decade, 10);
      Object.assign(query, { year_from: start, year_to: start + 9 });
    }
    try {
      const answer = await api("GET", "/api/v1/search", { query });
      const understood = intentWords(answer.query_parsed);
      replace(intent, understood ? `Understood: ${understood}` : "", ` · ${answer.total_count} found`);
      replace(
        facets,
        facetGroup("Genre", answer.facets.genre, (v) => filters.genres.includes(v), (v) => toggleIn(filters.genres, v)),
        facetGroup("Platform", answer.facets.platform, (v) => filters.platforms.includes(v), (v) => toggleIn(filters.platforms, v)),
        facetGroup("Decade", answer.facets.decade, (v) => filters.decade === v, (v) => {
          filters.decade = filters.decade === v ? null : v;
          search();
        }),
      );
      replace(
        results,
        answer.results.length
          ? answer.results.map(resultItem)
          : h("li", { class: "muted" }, "Nothing found. Try fewer words or other filters."),
      );
      lastQuery = query;
      shown = answer.results.length;
      more.hidden = shown >= answer.total_count;
      go.disabled = false;
    } catch (error) {
      go.disabled = false;
      showError(error, go); // a 429 disables it again for its Retry-After
    }
  }

  const form = h(
    "form",
    { role: "search", onsubmit: (e) => (e.preventDefault(), search()) },
    h("label", { for: "q" }, "Search titles and people"),
    h("div", { class: "combo" }, input, list),
    go,
  );
  replace(main, heading("Search"), form, intent, h("div", { class: "split" }, facets, h("div", {}, results, more)));
  input.focus();
  if (input.value) search();
}

// ---------------------------------------------------------------- a title

async function titlePage(main, parts) {
  const id = parts[0];
  replace(main, heading("Title"));
  let t;
  try {
    t = await title(id);
  } catch (error) {
    replace(main, heading("Title not found"), h("p", {}, error.message));
    return;
  }
  const current = session();
  const region = (current.region || "US").toUpperCase();
  const offers = (t.availability || []).filter((a) => a.regions.includes(region));
  const facts = [
    t.release_year,
    t.genres.map(genre).join(", "),
    runtime(t.runtime_minutes),
    t.maturity_rating,
    t.average_rating !== null ? `rated ${t.average_rating.toFixed(1)}/10 (${t.rating_count})` : null,
  ].filter(Boolean);
  const watchButton = h("button", { type: "button", id: "watchlist-toggle", disabled: true }, "Add to watchlist");
  const remotes = h("div", { id: "play-on" });
  replace(
    main,
    heading(t.title),
    h(
      "article",
      { class: "card" },
      h("p", { class: "facts" }, facts.join(" · ")),
      t.description ? h("p", {}, t.description) : null,
      h("h2", {}, `Where to watch in ${region}`),
      offers.length
        ? h(
            "table",
            {},
            h("thead", {}, h("tr", {}, ["Service", "How", "Price", "Until"].map((c) => h("th", { scope: "col" }, c)))),
            h(
              "tbody",
              {},
              offers.map((a) =>
                h(
                  "tr",
                  {},
                  h("td", {}, a.web_url ? h("a", { href: a.web_url, rel: "noopener", target: "_blank" }, platform(a.platform)) : platform(a.platform)),
                  h("td", {}, offer(a.availability_type)),
                  h("td", {}, price(a.price_cents, a.currency) || (a.availability_type === "subscription" ? "included" : "—")),
                  h("td", {}, date(a.available_until) || "—"),
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, `Not offered in ${region} right now.`),
      h("div", { class: "actions" }, watchButton, remotes),
    ),
  );
  let tags = null;
  const loadWatchlist = async () => {
    try {
      const doc = await api("GET", userPath("/watchlist"));
      const item = doc.items.find((i) => i.content_id === id);
      tags = item ? item.tags : null;
      watchButton.textContent = tags ? "Remove from watchlist" : "Add to watchlist";
      watchButton.disabled = false;
    } catch (error) {
      showError(error);
    }
  };
  watchButton.addEventListener("click", async () => {
    watchButton.disabled = true;
    try {
      if (tags) await api("DELETE", userPath(`/watchlist/${id}`), { body: { observed_tags: tags } });
      else await api("PUT", userPath(`/watchlist/${id}`));
      watchButton.textContent = tags ? "Removing…" : "Adding…";
      // The button settles when the merged change comes back on the realtime channel.
    } catch (error) {
      watchButton.disabled = false;
      showError(error, watchButton);
    }
  });
  listen("watchlist", (message) => {
    if (message.content_id !== id) return;
    // The live tags follow the merge: the add's tag joins, a remove's observed tags leave.
    const kept = (tags || []).filter((t) => !(message.removed_tags || []).includes(t));
    if (message.unique_tag && message.in_watchlist) kept.push(message.unique_tag);
    tags = message.in_watchlist ? kept : null;
    watchButton.textContent = tags ? "Remove from watchlist" : "Add to watchlist";
    watchButton.disabled = false;
  });
  try {
    const doc = await api("GET", userPath("/devices"));
    const tvs = doc.devices.filter((d) => d.capabilities.remote_controllable && d.device_id !== current.device_id);
    replace(
      remotes,
      tvs.map((d) =>
        h(
          "button",
          {
            type: "button",
            onclick: async (event) => {
              try {
                await socket.command(d.device_id, { type: "load_content", content_id: id, start_position: 0 });
              } catch (error) {
                showError(error, event.currentTarget);
              }
            },
          },
          `Play on ${d.device_name}${d.is_online ? "" : " (offline)"}`,
        ),
      ),
    );
    doc.devices.forEach((d) => deviceNames.set(d.device_id, d.device_name));
  } catch (error) {
    showError(error);
  }
  await loadWatchlist();
}

// ---------------------------------------------------------------- devices and the remote

async function devicesPage(main) {
  const current = session();
  const list = h("ul", { id: "devices", class: "rows" });
  replace(main, heading("Your devices"), list);
  let doc = null;
  const positions = new Map();
  const nowPlayingLine = (d) => {
    const np = d.now_playing;
    const where = positions.get(d.device_id);
    if (!np) return h("p", { class: "now-playing muted" }, "Nothing playing");
    return h(
      "p",
      { class: "now-playing" },
      `${np.state === "playing" ? "Playing" : np.state === "paused" ? "Paused" : "Stopped"}: `,
      titleLink(np.content_id),
      where ? ` · ${clock(where.position_seconds)} of ${clock(where.duration_seconds)}` : "",
    );
  };
  const draw = () =>
    replace(
      list,
      doc.devices.map((d) => {
        const self = d.device_id === current.device_id;
        const np = d.now_playing;
        const where = positions.get(d.device_id);
        const remote = d.capabilities.remote_controllable && !self;
        const send = (command) => async (event) => {
          try {
            await socket.command(d.device_id, command());
          } catch (error) {
            showError(error, event.currentTarget);
          }
        };
        const at = () => (where ? where.position_seconds : np ? np.position_seconds : 0);
        return h(
          "li",
          { class: "device", "data-device": d.device_id },
          h("h2", {}, d.device_name, self ? " (this browser)" : ""),
          h("p", {}, h("span", { class: `presence ${d.is_online ? "on" : "off"}` }, d.is_online ? "Online" : "Offline"), ` · ${d.device_type} · ${d.platform}`),
          nowPlayingLine(d),
          remote
            ? h(
                "div",
                { class: "remote", role: "group", "aria-label": `Remote for ${d.device_name}` },
                h("button", { type: "button", onclick: send(() => ({ type: "play" })) }, "Play"),
                h("button", { type: "button", onclick: send(() => ({ type: "pause" })) }, "Pause"),
                h("button", { type: "button", onclick: send(() => ({ type: "seek", position_seconds: Math.max(0, at() - 30) })) }, "Back 30 s"),
                h("button", { type: "button", onclick: send(() => ({ type: "seek", position_seconds: at() + 30 })) }, "Forward 30 s"),
                h("button", { type: "button", onclick: send(() => ({ type: "stop" })) }, "Stop"),
              )
            : null,
        );
      }),
    );
  const load = async () => {
    try {
      doc = await api("GET", userPath("/devices"));
      doc.devices.forEach((d) => deviceNames.set(d.device_id, d.device_name));
      draw();
    } catch (error) {
      showError(error);
    }
  };
  listen("device_presence", (message) => {
    const d = doc && doc.devices.find((x) => x.device_id === message.device_id);
    if (!d || message.presence === "removed") return load();
    d.is_online = message.presence === "online";
    if (message.device) Object.assign(d, message.device);
    if ("now_playing" in message && message.now_playing !== undefined) d.now_playing = message.now_playing;
    draw();
  });
  listen("progress", (message) => {
    if (!doc) return;
    positions.set(message.device_id, message);
    const d = doc.devices.find((x) => x.device_id === message.device_id);
    if (!d) return;
    d.now_playing = { content_id: message.content_id, position_seconds: message.position_seconds, state: message.state };
    // Only the line moves: the remote's buttons keep their focus between reports.
    const line = list.querySelector(`li[data-device="${CSS.escape(d.device_id)}"] .now-playing`);
    if (line) line.replaceWith(nowPlayingLine(d));
    else draw();
  });
  listen("resync", load);
  await load();
}

// ---------------------------------------------------------------- approving a TV's code

function activatePage(main, _parts, params) {
  const code = h("input", { id: "user-code", name: "user_code", required: true, autocomplete: "off", value: params.get("user_code") || "", "aria-describedby": "code-help" });
  const approve = h("button", { type: "submit" }, "Approve");
  const deny = h("button", { type: "button", class: "secondary" }, "Deny");
  const decide = (what) => async (event) => {
    event.preventDefault();
    try {
      await api("POST", `/api/v1/auth/device/${what}`, { body: { user_code: code.value }, device: false });
      notify(what === "approve" ? "The TV is signed in as you." : "The TV was refused.", "ok");
    } catch (error) {
      showError(error, approve);
    }
  };
  deny.addEventListener("click", decide("deny"));
  replace(
    main,
    heading("Sign in a TV"),
    h(
      "form",
      { class: "card narrow", onsubmit: decide("approve") },
      h("label", { for: "user-code" }, "The code the TV shows"),
      code,
      h("p", { id: "code-help", class: "muted" }, "Eight letters, like WDJB-MJHT."),
      h("div", { class: "actions" }, approve, deny),
    ),
  );
}

window.addEventListener("hashchange", route);
route();
