import { useEffect, useMemo, useState } from "react";
import { Client } from "@langchain/langgraph-sdk";
import { api, apiUrl, storedKey } from "./api.js";
import { fmtTime, go, usePoll } from "./hooks.js";
import { ChatThread } from "./ChatThread.jsx";

// The graphs whose state has `messages`, and their assistants: what a chat can talk to.
async function loadChatAssistants(client) {
  const graphs = await api("/graphs");
  const withMessages = [];
  for (const g of graphs) {
    try {
      const schemas = await client.assistants.getSchemas(g.name);
      if (schemas?.state_schema?.properties?.messages) withMessages.push(g.name);
    } catch {
      /* a graph that cannot say its schema is not offered for chat */
    }
  }
  const found = await Promise.all(
    withMessages.map((graphId) => client.assistants.search({ graphId, limit: 50 }).catch(() => [])),
  );
  return { graphs: withMessages, assistants: found.flat() };
}

export function Chat({ assistantId, threadId }) {
  // The official JS client: the page is itself a check that LangGraph's own web client works here.
  const client = useMemo(() => new Client({ apiUrl, apiKey: storedKey() || null }), []);
  const chat = usePoll(() => loadChatAssistants(client), 5000, []);
  const assistants = chat.data?.assistants ?? [];
  const current = assistantId || chat.data?.graphs[0];
  const assistant = assistants.find((a) => a.assistant_id === current || (a.graph_id === current && a.name === current));
  const graphId = assistant?.graph_id ?? (chat.data?.graphs.includes(current) ? current : undefined);

  const threads = usePoll(
    () =>
      graphId
        ? client.threads.search({ metadata: { graph_id: graphId }, limit: 30, sortBy: "updated_at", sortOrder: "desc" })
        : [],
    2000,
    [graphId, threadId], // a thread just made shows up at once
  );
  useEffect(() => {
    document.title = "Chat · graphrun";
  }, []);

  return (
    <div className="chat">
      <section className="pane list-pane narrow">
        <h2>Chat</h2>
        <label>
          assistant
          <select value={current ?? ""} onChange={(e) => go("chat", e.target.value)} data-testid="chat-assistant">
            {assistants.map((a) => (
              <option key={a.assistant_id} value={a.graph_id === a.name ? a.graph_id : a.assistant_id}>
                {a.name} ({a.graph_id})
              </option>
            ))}
          </select>
        </label>
        {chat.error && <p className="error">{String(chat.error.message)}</p>}
        <button onClick={() => go("chat", current)} data-testid="new-thread">
          New thread
        </button>
        <ul className="picklist" data-testid="thread-list">
          {(threads.data ?? []).map((t) => (
            <li
              key={t.thread_id}
              className={t.thread_id === threadId ? "selected" : ""}
              onClick={() => go("chat", current, t.thread_id)}
              data-testid="thread-item"
              data-id={t.thread_id}
            >
              <span className="mono small">{t.thread_id.slice(0, 8)}</span>{" "}
              <span className={`badge status-${t.status}`}>{t.status}</span>
              <div className="muted small">{fmtTime(t.updated_at)}</div>
            </li>
          ))}
        </ul>
      </section>
      <section className="pane detail-pane">
        {current ? (
          <ChatThread
            key={current}
            client={client}
            assistantId={current}
            graphId={graphId}
            threadId={threadId ?? null}
          />
        ) : (
          <p className="muted">No registered graph has `messages` in its state.</p>
        )}
      </section>
    </div>
  );
}
