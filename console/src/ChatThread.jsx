import { useState } from "react";
import { useStream } from "@langchain/langgraph-sdk/react";
import { go } from "./hooks.js";

function text(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p === "string" ? p : (p.text ?? ""))).join("");
  return JSON.stringify(content);
}

function Interrupt({ interrupt, onResume, busy }) {
  const [answer, setAnswer] = useState("");
  const value = interrupt.value;
  const question = typeof value === "string" ? value : (value?.question ?? value?.description ?? JSON.stringify(value));
  return (
    <div className="interrupt" data-testid="interrupt">
      <div className="question" data-testid="interrupt-question">
        {question}
      </div>
      <input
        placeholder="answer or reason (optional)"
        value={answer}
        onChange={(e) => setAnswer(e.target.value)}
        data-testid="interrupt-answer"
      />
      <button disabled={busy} onClick={() => onResume({ approved: true, ...(answer ? { reason: answer } : {}) })} data-testid="approve">
        Approve
      </button>
      <button
        className="danger"
        disabled={busy}
        onClick={() => onResume({ approved: false, ...(answer ? { reason: answer } : {}) })}
        data-testid="reject"
      >
        Reject
      </button>
      {answer && (
        <button disabled={busy} onClick={() => onResume(answer)} data-testid="reply">
          Send answer
        </button>
      )}
    </div>
  );
}

export function ChatThread({ client, assistantId, graphId, threadId }) {
  const [draft, setDraft] = useState("");
  const [runId, setRunId] = useState(null);
  const stream = useStream({
    client,
    assistantId,
    threadId,
    messagesKey: "messages",
    // The thread's id goes in the URL, so a reload reopens it; reconnectOnMount keeps the run's id in
    // sessionStorage and, after the reload, joins the run's stream from its start: the answer goes on
    // where it was, with nothing shown twice.
    onThreadId: (id) => go("chat", assistantId, id),
    reconnectOnMount: true,
    onCreated: (meta) => setRunId(meta.run_id),
  });
  const messages = stream.messages;
  const interrupt = stream.interrupt;

  const send = (e) => {
    e.preventDefault();
    const content = draft.trim();
    if (!content) return;
    setDraft("");
    const message = { type: "human", content };
    stream.submit(
      { messages: [message] },
      {
        metadata: graphId ? { graph_id: graphId } : undefined,
        streamMode: ["messages-tuple", "values"],
        optimisticValues: (prev) => ({ ...prev, messages: [...(prev.messages ?? []), message] }),
      },
    );
  };
  const resume = (value) => stream.submit(null, { command: { resume: value }, streamMode: ["messages-tuple", "values"] });

  return (
    <div className="chat-thread" data-testid="chat-thread" data-thread={threadId ?? ""} data-loading={String(stream.isLoading)}>
      <div className="row">
        <h2>{threadId ? <span className="mono">thread {threadId}</span> : "new thread"}</h2>
        {runId && <span className="muted small mono">run {runId}</span>}
      </div>
      <div className="messages" data-testid="messages">
        {messages.map((m, i) => (
          <div key={m.id ?? i} className={`msg msg-${m.type}`} data-testid={`msg-${m.type}`}>
            <span className="who">{m.type === "human" ? "you" : m.type}</span>
            <span className="text">{text(m.content)}</span>
          </div>
        ))}
        {stream.isLoading && <div className="muted small" data-testid="streaming">streaming…</div>}
      </div>
      {stream.error && (
        <p className="error" data-testid="chat-error">
          {String(stream.error?.message ?? stream.error)}
        </p>
      )}
      {interrupt && !stream.isLoading && interrupt.value !== undefined && (
        <Interrupt interrupt={interrupt} onResume={resume} busy={stream.isLoading} />
      )}
      <form className="composer" onSubmit={send}>
        <input
          placeholder="Message"
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          data-testid="chat-input"
          disabled={stream.isLoading}
        />
        <button type="submit" disabled={stream.isLoading || !draft.trim()} data-testid="chat-send">
          Send
        </button>
        <button type="button" className="danger" disabled={!stream.isLoading} onClick={() => stream.stop()} data-testid="chat-stop">
          Stop
        </button>
      </form>
      <details className="state" open>
        <summary>thread state</summary>
        <pre className="json" data-testid="thread-state">
          {JSON.stringify(stream.values ?? {}, null, 2)}
        </pre>
      </details>
    </div>
  );
}
