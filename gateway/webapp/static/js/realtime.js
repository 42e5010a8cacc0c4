// The device socket (docs/DEVICE_PROTOCOL.md): one WebSocket per tab, the device's events
// down, its heartbeats, progress and commands up. Never a polling loop: state changes arrive
// as messages, and a reconnect resumes from the last event id seen.

import { ApiError, api, refresh, session, userPath } from "./api.js";

const HEARTBEAT_MS = 25000; // a device is offline 60 s after its last heartbeat (docs/SYNC.md)

export class DeviceSocket extends EventTarget {
  constructor() {
    super();
    this.ws = null;
    this.lastId = null;
    this.pending = new Map();
    this.ref = 0;
    this.closed = false;
    this.failures = 0;
    this.nowPlaying = undefined; // a phone never says what it plays: its heartbeats carry no body
    this.heartbeat = null;
    this.live = false;
  }

  open() {
    const current = session();
    if (!current) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = this.lastId ? `?last_event_id=${encodeURIComponent(this.lastId)}` : "";
    const path = userPath(`/devices/${encodeURIComponent(current.device_id)}/socket`);
    // A browser cannot set Authorization on a WebSocket: the token rides as a subprotocol,
    // always offered beside mgw.v1, the one the server accepts.
    const ws = new WebSocket(`${scheme}://${location.host}${path}${query}`, [
      "mgw.v1",
      `bearer.${current.access_token}`,
    ]);
    this.ws = ws;
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    ws.onclose = (event) => this.dropped(ws, event);
  }

  close() {
    this.closed = true;
    clearInterval(this.heartbeat);
    if (this.ws) this.ws.close(1000);
    for (const { reject } of this.pending.values()) reject(new ApiError(0, null, null));
    this.pending.clear();
  }

  status(live, text) {
    this.live = live;
    this.dispatchEvent(new CustomEvent("status", { detail: { live, text } }));
  }

  receive(frame) {
    switch (frame.type) {
      case "ready":
        this.failures = 0;
        if (frame.id) this.lastId = frame.id;
        this.status(true, "Live");
        this.beat();
        clearInterval(this.heartbeat);
        this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
        this.dispatchEvent(new CustomEvent("ready"));
        break;
      case "message":
        this.lastId = frame.id;
        this.dispatchEvent(new CustomEvent(frame.data.kind, { detail: frame.data }));
        break;
      case "resync":
        // Messages were missed: the views reload what they show.
        this.dispatchEvent(new CustomEvent("resync"));
        break;
      case "accepted":
      case "error": {
        const waiting = this.pending.get(frame.ref);
        if (!waiting) break;
        this.pending.delete(frame.ref);
        if (frame.type === "accepted") waiting.resolve(frame.data);
        else waiting.reject(new ApiError(frame.data.status, frame.data, null));
        break;
      }
      case "expired":
        this.expired = true;
        break;
      case "revoked":
        this.closed = true;
        this.status(false, "This device was removed");
        this.dispatchEvent(new CustomEvent("revoked"));
        break;
      default:
        break;
    }
  }

  async dropped(ws, event) {
    if (ws !== this.ws) return;
    clearInterval(this.heartbeat);
    for (const { reject } of this.pending.values()) reject(new ApiError(0, null, null));
    this.pending.clear();
    if (this.closed) return;
    this.status(false, "Reconnecting…");
    this.failures += 1;
    try {
      if (this.expired || event.code === 4001) {
        this.expired = false;
        await refresh();
      } else if (event.code === 1006 && this.failures > 1) {
        // A refused handshake is only a 1006 to a browser: an HTTP read says why (an expired
        // token is refreshed by api(); a session that cannot be renewed ends there).
        await api("GET", userPath("/realtime"));
      }
    } catch (error) {
      if (error.status === 401) {
        this.closed = true;
        this.status(false, "Signed out");
        return;
      }
    }
    const wait = Math.min(15000, 500 * 2 ** Math.min(this.failures, 5));
    setTimeout(() => {
      if (!this.closed) this.open();
    }, wait);
  }

  // Frames with a ref are answered by `accepted` or `error`; the promise settles with it.
  request(frame) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject(new ApiError(0, null, null));
        return;
      }
      this.ref += 1;
      const ref = `r-${this.ref}`;
      this.pending.set(ref, { resolve, reject });
      this.ws.send(JSON.stringify({ ...frame, ref }));
    });
  }

  beat() {
    const body = this.nowPlaying === undefined ? undefined : { now_playing: this.nowPlaying };
    this.request({ type: "heartbeat", ...(body ? { body } : {}) }).catch(() => {});
  }

  setNowPlaying(value) {
    this.nowPlaying = value;
    if (this.live) this.beat();
  }

  // A command to another device: over the socket when it is open, else over HTTP.
  async command(target, command) {
    const body = { command };
    if (this.live) return this.request({ type: "command", target_device_id: target, body });
    return api("POST", userPath(`/devices/${encodeURIComponent(target)}/commands`), { body });
  }

  async progress(contentId, body) {
    if (this.live) return this.request({ type: "progress", content_id: contentId, body });
    return api("PUT", userPath(`/progress/${contentId}`), { body });
  }
}
