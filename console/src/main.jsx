import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { api, ApiError, storedKey, storeKey } from "./api.js";
import { useHashRoute } from "./hooks.js";
import { Runs } from "./Runs.jsx";
import { Graphs } from "./Graphs.jsx";
import { Chat } from "./Chat.jsx";
import "./style.css";

// With GRAPHRUN_API_KEYS set, nothing but this form is shown until a key is accepted: the probe is
// GET /graphs, which needs a key exactly when keys are on.
function KeyGate({ children }) {
  const [state, setState] = useState("checking");
  const [error, setError] = useState("");
  const [draft, setDraft] = useState("");

  const probe = async (key) => {
    try {
      await api("/graphs", { key });
      if (key !== undefined) storeKey(key);
      setState("ok");
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        setState("need-key");
        if (key !== undefined || storedKey()) setError("That key was refused.");
        if (key === undefined) storeKey("");
      } else {
        setState("need-key");
        setError(String(err.message ?? err));
      }
    }
  };
  useEffect(() => {
    probe(undefined);
  }, []);

  if (state === "ok") return children;
  if (state === "checking") return <p className="muted pad">Connecting…</p>;
  return (
    <form
      className="keygate"
      data-testid="key-form"
      onSubmit={(e) => {
        e.preventDefault();
        setError("");
        probe(draft.trim());
      }}
    >
      <h1>graphrun console</h1>
      <p>This server needs an API key (GRAPHRUN_API_KEYS). It is kept in this browser only.</p>
      <input
        type="password"
        autoFocus
        placeholder="API key"
        data-testid="key-input"
        value={draft}
        onChange={(e) => setDraft(e.target.value)}
      />
      <button type="submit" data-testid="key-submit">
        Use key
      </button>
      {error && <p className="error">{error}</p>}
    </form>
  );
}

function App() {
  const [view, ...rest] = useHashRoute();
  const current = view || "runs";
  const tab = (name, label) => (
    <a href={`#/${name}`} className={current === name ? "tab active" : "tab"} data-testid={`tab-${name}`}>
      {label}
    </a>
  );
  return (
    <div className="app">
      <header>
        <span className="brand">graphrun</span>
        {tab("runs", "Runs")}
        {tab("graphs", "Graphs")}
        {tab("chat", "Chat")}
        {storedKey() && (
          <button
            className="link right"
            onClick={() => {
              storeKey("");
              window.location.reload();
            }}
          >
            forget key
          </button>
        )}
      </header>
      <main>
        {current === "runs" && <Runs selected={rest[0]} />}
        {current === "graphs" && <Graphs selected={rest[0]} />}
        {current === "chat" && <Chat assistantId={rest[0]} threadId={rest[1]} />}
      </main>
    </div>
  );
}

createRoot(document.getElementById("root")).render(
  <StrictMode>
    <KeyGate>
      <App />
    </KeyGate>
  </StrictMode>,
);
