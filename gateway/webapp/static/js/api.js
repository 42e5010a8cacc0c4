// Every HTTP call the app makes goes through here: the session, the headers, and errors read
// as problem+json (docs/HTTP_CONTRACT.md) or OAuth errors (docs/AUTH.md) into one ApiError
// whose `message` is written for a person.

const SESSION_KEY = "mgw.session";
// Per tab (sessionStorage), so one browser can be the phone in one window and the TV in another.
const store = window.sessionStorage;

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(humanMessage(status, problem, retryAfter));
    this.status = status;
    this.problem = problem || {};
    this.code = this.problem.error || null;
    this.retryAfter = retryAfter;
  }
}

function humanMessage(status, problem, retryAfter) {
  const p = problem || {};
  if (status === 0) return "The gateway cannot be reached. Check the connection; the app tries again.";
  if (status === 429) {
    const wait = retryAfter ? `${retryAfter} s` : "a moment";
    return `Too many requests. Please wait ${wait} and try again.`;
  }
  if (status === 401) return "Your session has ended. Please sign in again.";
  if (p.error === "device_offline") return p.detail || "That device is offline.";
  const said = p.detail || p.error_description || p.title;
  if (status >= 500) {
    return `${said || "The service is busy"}. Please try again in a moment.`;
  }
  return said || `The request failed (${status}).`;
}

export function session() {
  const raw = store.getItem(SESSION_KEY);
  return raw ? JSON.parse(raw) : null;
}

export function saveSession(value) {
  store.setItem(SESSION_KEY, JSON.stringify(value));
}

export function clearSession() {
  store.removeItem(SESSION_KEY);
}

export function newId() {
  // crypto.randomUUID needs a secure context; getRandomValues works on any origin.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Announced to the app when a session cannot be renewed (the shell shows sign-in).
export const events = new EventTarget();

async function readError(response) {
  const retry = Number(response.headers.get("Retry-After")) || null;
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return new ApiError(response.status, body, retry);
}

async function send(url, init) {
  try {
    return await fetch(url, init);
  } catch {
    throw new ApiError(0, null, null);
  }
}

function formBody(fields) {
  return new URLSearchParams(Object.entries(fields).filter(([, v]) => v !== undefined && v !== null));
}

// The token endpoint answers OAuth errors ({error, error_description}), not problem+json.
export async function tokenRequest(fields) {
  const response = await send("/api/v1/auth/token", { method: "POST", body: formBody(fields) });
  if (!response.ok) throw await readError(response);
  return response.json();
}

export async function deviceCode(fields) {
  const response = await send("/api/v1/auth/device/code", { method: "POST", body: formBody(fields) });
  if (!response.ok) throw await readError(response);
  return response.json();
}

export function claims(accessToken) {
  const part = accessToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(part));
}

export async function signInDev(username) {
  const tokens = await tokenRequest({
    grant_type: "urn:media-gateway:params:oauth:grant-type:dev-user",
    username,
  });
  return tokens;
}

let refreshing = null;

// One refresh at a time: the refresh token rotates, and using an old one twice would revoke
// the whole session (docs/AUTH.md, reuse detection).
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const current = session();
      if (!current || !current.refresh_token) throw new ApiError(401, null, null);
      try {
        const tokens = await tokenRequest({
          grant_type: "refresh_token",
          refresh_token: current.refresh_token,
        });
        saveSession({ ...current, access_token: tokens.access_token, refresh_token: tokens.refresh_token });
      } catch (error) {
        if (error.status && error.status < 500) {
          clearSession();
          events.dispatchEvent(new CustomEvent("expired"));
          throw new ApiError(401, null, null);
        }
        throw error;
      }
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

// opts: query, body (JSON), auth (default true), device (send X-Device-ID, default true)
export async function api(method, path, opts = {}) {
  const { query, body, auth = true, device = true } = opts;
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined || value === null || value === "") continue;
      if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
      else params.append(key, value);
    }
    const text = params.toString();
    if (text) url += `?${text}`;
  }
  const attempt = async () => {
    const headers = {};
    const current = session();
    if (auth && current) headers.Authorization = `Bearer ${current.access_token}`;
    if (device && current && current.device_id) headers["X-Device-ID"] = current.device_id;
    if (method !== "GET") headers["Idempotency-Key"] = newId();
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return send(url, init);
  };
  let response = await attempt();
  if (response.status === 401 && auth && session()) {
    await refresh();
    response = await attempt();
  }
  // A read past the rate limit waits the Retry-After the gateway names and asks again (a
  // read is safe to repeat); a write, or a long wait, is the person's to retry.
  for (let tries = 0; method === "GET" && response.status === 429 && tries < 3; tries += 1) {
    const wait = Number(response.headers.get("Retry-After")) || 1;
    if (wait > 5) break;
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    response = await attempt();
  }
  if (!response.ok) throw await readError(response);
  if (response.status === 204) return null;
  return response.json();
}

export function userPath(suffix) {
  const current = session();
  return `/api/v1/users/${encodeURIComponent(current.user)}${suffix}`;
}

// Titles are read without a credential: anonymous content reads are answered by the
// gateway's response cache and count against no one's rate limit. Kept for the tab's life.
const titles = new Map();

export function title(contentId) {
  if (!titles.has(contentId)) {
    const pending = api("GET", `/api/v1/content/${contentId}`, { auth: false, device: false });
    pending.catch(() => titles.delete(contentId));
    titles.set(contentId, pending);
  }
  return titles.get(contentId);
}

export async function registerDevice(details) {
  const current = session();
  await api("PUT", userPath(`/devices/${encodeURIComponent(current.device_id)}`), {
    body: details,
    device: false,
  });
}

export async function signOut() {
  const current = session();
  clearSession();
  if (current) {
    // RFC 7009: the token goes in the form; the answer is 200 whatever it was.
    await send("/api/v1/auth/revoke", {
      method: "POST",
      body: formBody({ token: current.refresh_token || current.access_token }),
    });
  }
}
