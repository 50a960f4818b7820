import { useEffect, useState } from "react";
import { api, allPages, ApiError } from "./api.js";
import { fmtTime, go, seconds, usePoll } from "./hooks.js";
import { RunDetail } from "./RunDetail.jsx";

const STATUSES = ["", "queued", "running", "succeeded", "failed", "cancelled", "timed_out", "interrupted"];

// Statuses this server does not know (422): asked once, then counted as none.
const unknownStatuses = new Set();

// How many executions have a status, counted from one page of 200 (shown as "200+" beyond).
async function countStatus(status) {
  if (unknownStatuses.has(status)) return 0;
  try {
    const page = await api(`/executions?status=${status}&limit=200`);
    return page.next_cursor ? `${page.items.length}+` : page.items.length;
  } catch (err) {
    // A server without that status (older native API) answers 422: it has none of them.
    if (err instanceof ApiError && err.status === 422) {
      unknownStatuses.add(status);
      return 0;
    }
    throw err;
  }
}

// "Interrupted" is what waits for a human: native executions stopped at interrupt(), plus LangGraph
// threads whose run ended at one (their run itself ends "success", as in LangGraph's server).
async function loadCounts() {
  const [queued, running, failed, interrupted, threads] = await Promise.all([
    countStatus("queued"),
    countStatus("running"),
    countStatus("failed"),
    countStatus("interrupted"),
    api("/threads/count", { method: "POST", body: { status: "interrupted" } }).catch(() => 0),
  ]);
  const waiting = typeof interrupted === "number" ? interrupted + Number(threads || 0) : interrupted;
  return { queued, running, interrupted: waiting, failed };
}

function Counts() {
  const { data } = usePoll(loadCounts, 1000, []);
  return (
    <div className="counts" data-testid="counts">
      {["queued", "running", "interrupted", "failed"].map((s) => (
        <div key={s} className={`count status-${s}`} data-testid={`count-${s}`}>
          <b>{data ? data[s] : "…"}</b>
          <span>{s}</span>
        </div>
      ))}
    </div>
  );
}

export function Runs({ selected }) {
  const [status, setStatus] = useState("");
  const [workflowId, setWorkflowId] = useState("");
  const [threadId, setThreadId] = useState("");
  const workflows = usePoll(() => allPages("/workflows"), 5000, []);
  const byId = Object.fromEntries((workflows.data ?? []).map((w) => [w.id, w]));

  const query = new URLSearchParams({ limit: "100" });
  if (status) query.set("status", status);
  if (workflowId) query.set("workflow_id", workflowId);
  if (threadId.trim()) query.set("thread_id", threadId.trim());
  const list = usePoll(() => api(`/executions?${query}`), 1000, [status, workflowId, threadId]);

  useEffect(() => {
    document.title = "Runs · graphrun";
  }, []);

  return (
    <div className="runs">
      <section className="pane list-pane">
        <Counts />
        <div className="filters">
          <select value={status} onChange={(e) => setStatus(e.target.value)} data-testid="filter-status">
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s || "any status"}
              </option>
            ))}
          </select>
          <select value={workflowId} onChange={(e) => setWorkflowId(e.target.value)} data-testid="filter-workflow">
            <option value="">any workflow / assistant</option>
            {(workflows.data ?? []).map((w) => (
              <option key={w.id} value={w.id}>
                {w.name} (#{w.id}, {w.graph})
              </option>
            ))}
          </select>
          <input
            placeholder="thread id"
            value={threadId}
            onChange={(e) => setThreadId(e.target.value)}
            data-testid="filter-thread"
          />
        </div>
        {list.error && <p className="error">{String(list.error.message)}</p>}
        <table className="table" data-testid="runs-table">
          <thead>
            <tr>
              <th>execution</th>
              <th>workflow</th>
              <th>status</th>
              <th>created</th>
              <th>took</th>
            </tr>
          </thead>
          <tbody>
            {(list.data?.items ?? []).map((ex) => (
              <tr
                key={ex.id}
                className={ex.id === selected ? "selected" : ""}
                onClick={() => go("runs", ex.id)}
                data-testid="run-row"
                data-id={ex.id}
                data-status={ex.status}
              >
                <td className="mono">{ex.id.slice(0, 12)}</td>
                <td>
                  {byId[ex.workflow_id]?.name ?? `#${ex.workflow_id}`} <span className="muted">v{ex.workflow_version}</span>
                  {ex.thread_id && <div className="muted mono small">thread {ex.thread_id.slice(0, 8)}</div>}
                </td>
                <td>
                  <span className={`badge status-${ex.status}`}>{ex.status}</span>
                </td>
                <td>{fmtTime(ex.created_at)}</td>
                <td>{seconds(ex.started_at, ex.finished_at) ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {list.data && list.data.items.length === 0 && <p className="muted">No executions match.</p>}
      </section>
      <section className="pane detail-pane">
        {selected ? (
          <RunDetail key={selected} executionId={selected} workflow={null} workflows={byId} />
        ) : (
          <p className="muted">Pick an execution to see its events.</p>
        )}
      </section>
    </div>
  );
}
