import { useEffect, useState } from "react";
import { api } from "./api.js";
import { followEvents } from "./sse.js";
import { fmtTime, seconds, usePoll } from "./hooks.js";

const FINISHED = new Set(["succeeded", "failed", "cancelled", "timed_out", "interrupted"]);

function Json({ value, testid }) {
  if (value === null || value === undefined) return <span className="muted">—</span>;
  return (
    <pre className="json" data-testid={testid}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

// One event as one line: its kind, its node and the rest of its data, compactly.
function summary(event) {
  const data = event.data;
  if (!data || typeof data !== "object") return String(data ?? "");
  const { execution_id: _e, ts: _t, node: _n, ...rest } = data;
  const text = JSON.stringify(rest);
  return text === "{}" ? "" : text.length > 240 ? text.slice(0, 240) + "…" : text;
}

export function RunDetail({ executionId, workflows }) {
  const [events, setEvents] = useState([]);
  const [stream, setStream] = useState("connecting");
  const [cancelError, setCancelError] = useState("");
  const ex = usePoll(() => api(`/executions/${executionId}`), 1000, [executionId]);

  useEffect(() => {
    setEvents([]);
    return followEvents(executionId, {
      onEvent: (e) => setEvents((list) => [...list, e]),
      onStatus: setStream,
    });
  }, [executionId]);

  const execution = ex.data;
  const finished = execution && FINISHED.has(execution.status);
  const cancel = async () => {
    setCancelError("");
    try {
      await api(`/executions/${executionId}/cancel`, { method: "POST" });
    } catch (err) {
      setCancelError(String(err.message));
    }
  };

  return (
    <div className="run-detail" data-testid="run-detail" data-id={executionId}>
      <div className="row">
        <h2 className="mono">{executionId}</h2>
        <button className="danger" onClick={cancel} disabled={!execution || finished} data-testid="cancel">
          Cancel
        </button>
      </div>
      {ex.error && <p className="error">{String(ex.error.message)}</p>}
      {cancelError && <p className="error">{cancelError}</p>}
      {execution && (
        <>
          <div className="facts">
            <span>
              status <b className={`badge status-${execution.status}`} data-testid="run-status">{execution.status}</b>
            </span>
            <span>
              workflow {workflows[execution.workflow_id]?.name ?? `#${execution.workflow_id}`} v{execution.workflow_version}
            </span>
            <span>attempt {execution.attempt}</span>
            <span>created {fmtTime(execution.created_at)}</span>
            <span>waited {seconds(execution.created_at, execution.started_at) ?? "—"}</span>
            <span data-testid="run-duration">ran {seconds(execution.started_at, execution.finished_at) ?? "—"}</span>
            {execution.thread_id && (
              <span>
                thread <span className="mono">{execution.thread_id}</span>
              </span>
            )}
          </div>
          {execution.error && (
            <div className="error-box" data-testid="run-error">
              <b>{execution.error.type ?? "error"}</b>: {execution.error.message ?? JSON.stringify(execution.error)}
            </div>
          )}
          <div className="io">
            <div>
              <h3>input</h3>
              <Json value={execution.input} testid="run-input" />
            </div>
            <div>
              <h3>output</h3>
              <Json value={execution.output} testid="run-output" />
            </div>
          </div>
        </>
      )}
      <h3>
        events <span className="muted small" data-testid="stream-status">({stream})</span>
      </h3>
      <ol className="events" data-testid="events">
        {events.map((e, i) => (
          <li key={e.id ?? `t${i}`} data-testid="event" data-event={e.event} data-id={e.id ?? ""} data-node={e.data?.node ?? ""}>
            <span className="mono muted">{e.id ?? "—"}</span>
            <span className={`ev ev-${e.event.replace(/[^a-z_]/g, "_")}`}>{e.event}</span>
            {e.data?.node && <span className="node">{e.data.node}</span>}
            <span className="mono small">{summary(e)}</span>
          </li>
        ))}
      </ol>
    </div>
  );
}
