// Follows an execution's native event stream (docs/events.md) over fetch rather than EventSource:
// fetch can send the API key as a header, which EventSource cannot, and any execution in the list
// can then be followed (a submit's events_url token covers only that one execution).
//
// What must stay true: after a dropped connection it reconnects by itself with Last-Event-ID, so
// the server resumes strictly after the last event shown; and it drops any event whose id is not
// past the last one shown, so no line is ever repeated, whatever the server or a proxy replays.
import { apiUrl, authHeaders } from "./api.js";

const TERMINAL = new Set(["complete", "error", "cancelled", "timeout", "interrupt"]);

// Every live connection, so tests (and a curious user in the devtools) can drop them all at once and
// watch the page resume: window.graphrunDropStreams().
const live = new Set();
window.graphrunDropStreams = () => {
  for (const c of live) c.abort(new Error("dropped on purpose"));
  return live.size;
};

function compareIds(a, b) {
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am !== bm ? am - bm : as - bs;
}

function parseFrame(frame) {
  const out = { id: null, event: "message", data: "" };
  const data = [];
  for (const line of frame.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (field === "id") out.id = value;
    else if (field === "event") out.event = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length && out.id === null) return null;
  out.data = data.join("\n");
  return out;
}

export function followEvents(executionId, { onEvent, onStatus }) {
  let lastId = null;
  let stopped = false;
  let connection = null;
  let attempts = 0;

  async function connectOnce() {
    connection = new AbortController();
    live.add(connection);
    const headers = { Accept: "text/event-stream", ...authHeaders() };
    if (lastId) headers["Last-Event-ID"] = lastId;
    try {
      const res = await fetch(`${apiUrl}/executions/${encodeURIComponent(executionId)}/events`, {
        headers,
        signal: connection.signal,
        cache: "no-store",
      });
      if (!res.ok) {
        const body = await res.text();
        // A client mistake (unknown id, wrong key) will not mend by retrying.
        if (res.status >= 400 && res.status < 500) return { done: true, error: `${res.status}: ${body}` };
        return { done: false, error: `${res.status}: ${body}` };
      }
      onStatus?.(attempts ? "resumed" : "live");
      attempts = 0;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return { done: false };
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const frame = parseFrame(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
          if (!frame) continue;
          if (frame.id !== null) {
            if (lastId !== null && compareIds(frame.id, lastId) <= 0) continue;
            lastId = frame.id;
          }
          let data = frame.data;
          try {
            data = JSON.parse(frame.data);
          } catch {
            /* not JSON: shown as text */
          }
          onEvent({ id: frame.id, event: frame.event, data });
          if (TERMINAL.has(frame.event)) return { done: true };
        }
      }
    } catch (err) {
      return { done: false, error: String(err?.message ?? err) };
    } finally {
      live.delete(connection);
    }
  }

  (async () => {
    while (!stopped) {
      const { done, error } = await connectOnce();
      if (stopped) break;
      if (done) {
        onStatus?.(error ? `failed: ${error}` : "ended");
        break;
      }
      attempts += 1;
      onStatus?.(`reconnecting${error ? ` (${error})` : ""}`);
      // Quick at first (a dropped connection), slower while the server stays away.
      await new Promise((r) => setTimeout(r, Math.min(250 * attempts, 3000)));
    }
  })();

  return () => {
    stopped = true;
    connection?.abort();
  };
}
