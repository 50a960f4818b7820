import { useEffect, useRef, useState } from "react";

// The route lives in the URL's hash (#/runs/<id>, #/chat/<assistant>/<thread>): a reload or a shared
// link opens the same view, and the server needs to know nothing about the console's paths.
export function useHashRoute() {
  const read = () => window.location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const [parts, setParts] = useState(read);
  useEffect(() => {
    const on = () => setParts(read());
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return parts;
}

export function go(...parts) {
  window.location.hash = "#/" + parts.filter((p) => p != null && p !== "").map(encodeURIComponent).join("/");
}

// Calls `load` now and every `ms` while mounted (and again when `deps` change); keeps the last good
// answer on screen through a failed poll, and reports the failure beside it.
export function usePoll(load, ms, deps) {
  const [state, setState] = useState({ data: null, error: null });
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    let alive = true;
    let timer = null;
    const tick = async () => {
      try {
        const data = await loadRef.current();
        if (alive) setState({ data, error: null });
      } catch (error) {
        if (alive) setState((s) => ({ data: s.data, error }));
      }
      if (alive && ms) timer = setTimeout(tick, ms);
    };
    tick();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return state;
}

export function fmtTime(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "—";
}

export function seconds(from, to) {
  if (!from) return null;
  const end = to ? new Date(to) : new Date();
  return ((end - new Date(from)) / 1000).toFixed(2) + " s";
}
