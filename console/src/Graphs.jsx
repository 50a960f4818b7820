import { useEffect, useState } from "react";
import { api, allPages } from "./api.js";
import { go, usePoll } from "./hooks.js";
import { GraphView } from "./GraphView.jsx";

// A first input that runs each built-in example as is; any other graph starts from {}.
const SAMPLE_INPUT = {
  chain: { n: 0 },
  chat: { messages: [{ type: "human", content: "hello" }] },
  approval: { request: "deploy v2" },
};

function Versions({ assistantId }) {
  const { data, error } = usePoll(
    () => api(`/assistants/${assistantId}/versions`, { method: "POST", body: { limit: 20 } }),
    0,
    [assistantId],
  );
  if (error) return <span className="error small">{String(error.message)}</span>;
  return (
    <ul className="versions">
      {(data ?? []).map((v) => (
        <li key={v.version}>
          v{v.version} <span className="mono small">{JSON.stringify(v.config ?? {})}</span>
        </li>
      ))}
    </ul>
  );
}

function Assistants({ graph }) {
  const [open, setOpen] = useState(null);
  const { data, error } = usePoll(
    () => api("/assistants/search", { method: "POST", body: { graph_id: graph, limit: 50 } }),
    3000,
    [graph],
  );
  if (error) return <p className="muted small">Assistants unavailable: {String(error.message)}</p>;
  return (
    <table className="table" data-testid="assistants">
      <thead>
        <tr>
          <th>workflow / assistant</th>
          <th>version</th>
          <th>config</th>
        </tr>
      </thead>
      <tbody>
        {(data ?? []).map((a) => (
          <tr key={a.assistant_id} onClick={() => setOpen(open === a.assistant_id ? null : a.assistant_id)}>
            <td>
              {a.name} <div className="mono small muted">{a.assistant_id}</div>
            </td>
            <td>
              v{a.version}
              {open === a.assistant_id && <Versions assistantId={a.assistant_id} />}
            </td>
            <td className="mono small">{JSON.stringify(a.config ?? {})}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function StartForm({ graph }) {
  const workflows = usePoll(() => allPages("/workflows"), 0, [graph]);
  const mine = (workflows.data ?? []).filter((w) => w.graph === graph);
  const [choice, setChoice] = useState("");
  const [name, setName] = useState(`${graph}-console`);
  const [config, setConfig] = useState("{}");
  const [input, setInput] = useState(JSON.stringify(SAMPLE_INPUT[graph] ?? {}, null, 2));
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    setInput(JSON.stringify(SAMPLE_INPUT[graph] ?? {}, null, 2));
    setChoice("");
  }, [graph]);
  // The default: the graph's own workflow (its default assistant), else a new one.
  const selected = choice || (mine.find((w) => w.name === graph)?.id ?? mine[0]?.id ?? "new");

  const start = async (e) => {
    e.preventDefault();
    setError("");
    let body;
    let cfg;
    try {
      body = JSON.parse(input);
      cfg = selected === "new" ? JSON.parse(config) : null;
    } catch (err) {
      setError(`Not JSON: ${err.message}`);
      return;
    }
    setBusy(true);
    try {
      let id = selected;
      if (selected === "new") id = (await api("/workflows", { method: "POST", body: { name, graph, config: cfg } })).id;
      const sub = await api(`/workflows/${id}/executions`, { method: "POST", body: { input: body } });
      go("runs", sub.execution_id);
    } catch (err) {
      setError(String(err.message));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="start-form" onSubmit={start} data-testid="start-form">
      <h3>Start a run</h3>
      <label>
        workflow
        <select value={selected} onChange={(e) => setChoice(e.target.value)} data-testid="start-workflow">
          {mine.map((w) => (
            <option key={w.id} value={w.id}>
              {w.name} (#{w.id} v{w.version}) {JSON.stringify(w.config)}
            </option>
          ))}
          <option value="new">new workflow…</option>
        </select>
      </label>
      {selected === "new" && (
        <>
          <label>
            name
            <input value={name} onChange={(e) => setName(e.target.value)} data-testid="start-name" />
          </label>
          <label>
            config (JSON)
            <textarea rows={3} value={config} onChange={(e) => setConfig(e.target.value)} data-testid="start-config" />
          </label>
        </>
      )}
      <label>
        input (JSON)
        <textarea rows={5} value={input} onChange={(e) => setInput(e.target.value)} data-testid="start-input" />
      </label>
      <button type="submit" disabled={busy} data-testid="start-submit">
        Start
      </button>
      {error && <p className="error" data-testid="start-error">{error}</p>}
    </form>
  );
}

export function Graphs({ selected }) {
  const graphs = usePoll(() => api("/graphs"), 0, []);
  const list = graphs.data ?? [];
  const current = selected || list[0]?.name;
  const structure = usePoll(
    () => (current ? api(`/assistants/${encodeURIComponent(current)}/graph`) : null),
    0,
    [current],
  );
  useEffect(() => {
    document.title = "Graphs · graphrun";
  }, []);

  return (
    <div className="graphs">
      <section className="pane list-pane narrow">
        <h2>Graphs</h2>
        {graphs.error && <p className="error">{String(graphs.error.message)}</p>}
        <ul className="picklist" data-testid="graph-list">
          {list.map((g) => (
            <li
              key={g.name}
              className={g.name === current ? "selected" : ""}
              onClick={() => go("graphs", g.name)}
              data-testid="graph-item"
              data-name={g.name}
            >
              <b>{g.name}</b>
              <div className="muted small">{g.description}</div>
            </li>
          ))}
        </ul>
      </section>
      {current && (
        <section className="pane detail-pane">
          <h2>{current}</h2>
          <div className="graph-row">
            <div>
              {structure.error ? (
                <p className="muted small">Structure unavailable: {String(structure.error.message)}</p>
              ) : (
                <GraphView graph={structure.data} />
              )}
            </div>
            <StartForm graph={current} />
          </div>
          <h3>Workflows and assistants</h3>
          <Assistants graph={current} />
        </section>
      )}
    </div>
  );
}
