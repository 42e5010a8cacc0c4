// DOM helpers and formatting, no I/O.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function replace(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

const notices = () => document.getElementById("notice");

// Errors and confirmations: one live region, read out by screen readers.
export function notify(text, kind = "error") {
  const region = notices();
  const item = h("p", { class: `notice ${kind}` }, text);
  region.replaceChildren(item);
  if (kind !== "error") setTimeout(() => item.remove(), 6000);
}

export function clearNotice() {
  notices().replaceChildren();
}

// A 429 names its wait: the control that caused it stays disabled until then.
export function showError(error, control) {
  notify(error.message || String(error));
  if (error.status === 429 && control) {
    control.disabled = true;
    setTimeout(() => {
      control.disabled = false;
    }, (error.retryAfter || 1) * 1000);
  }
}

export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

export function runtime(minutes) {
  if (!minutes) return null;
  const hh = Math.floor(minutes / 60);
  const mm = minutes % 60;
  return hh ? `${hh} h ${mm} min` : `${mm} min`;
}

const GENRE_NAMES = { science_fiction: "science fiction", tv_movie: "TV movie" };

export function genre(id) {
  return GENRE_NAMES[id] || String(id).replace(/_/g, " ");
}

const PLATFORM_NAMES = {
  netflix: "Netflix",
  prime_video: "Prime Video",
  disney_plus: "Disney+",
  hbo_max: "Max",
  hulu: "Hulu",
  apple_tv_plus: "Apple TV+",
  peacock: "Peacock",
  paramount_plus: "Paramount+",
};

export function platform(id) {
  return PLATFORM_NAMES[id] || String(id).replace(/_/g, " ");
}

const OFFER_WORDS = { subscription: "Subscription", rent: "Rent", purchase: "Buy", free: "Free", ads: "Free with ads" };

export function offer(type) {
  return OFFER_WORDS[type] || type;
}

export function price(cents, currency) {
  if (cents === null || cents === undefined || !currency) return null;
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(cents / 100);
}

export function date(text) {
  if (!text) return null;
  return new Date(text).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

export function progressBar(position, duration, label) {
  const pct = duration ? Math.min(100, Math.round((100 * position) / duration)) : 0;
  return h(
    "div",
    {
      class: "bar",
      role: "progressbar",
      "aria-label": label,
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": String(pct),
      "aria-valuetext": `${clock(position)} of ${clock(duration)}`,
    },
    h("span", { style: `width:${pct}%` }),
  );
}

// What the search understood, in words: "comedy, 2000–2009, on Netflix".
export function intentWords(parsed) {
  if (!parsed) return "";
  const f = parsed.filters || {};
  const words = [];
  const kinds = f.content_types || [];
  if (kinds.length) words.push(kinds.includes("series") ? (kinds.length === 1 ? "series" : kinds.join(", ")) : "films");
  (f.genres || []).forEach((g) => words.push(genre(g)));
  if (f.year_range) words.push(`${f.year_range[0]}–${f.year_range[1]}`);
  (f.platforms || []).forEach((p) => words.push(`on ${platform(p)}`));
  (parsed.mood || []).forEach((m) => words.push(`mood: ${m}`));
  (parsed.themes || []).forEach((t) => words.push(`about ${t}`));
  (parsed.references || []).forEach((r) => words.push(`like ${r}`));
  if (parsed.fallback_query && !words.length) words.push(`“${parsed.fallback_query}”`);
  return words.join(", ");
}
