// One conversation through the official JS LangGraph SDK (`@langchain/langgraph-sdk`), as a browser
// app built on it holds one: a thread, two streamed turns whose state accumulates, and a third turn
// left part-way and rejoined with `runs.joinStream(threadId, runId, { lastEventId })`.
//
//   node tests/js/conversation.mjs [--reference] [URL] [ASSISTANT]
//
// URL defaults to $GRAPHRUN_URL, ASSISTANT to $GRAPHRUN_ASSISTANT or "chat" (a graph whose model
// answers "turn N: you said ..." and, to "say N words", "turn N: w1 ... wN": tests/js/project/chat.py).
// $GRAPHRUN_API_KEY, when set, is sent as the SDK sends keys.
//
// Some checks hold graphrun to more than LangGraph's own server gives: an `end` event closes every
// stream, and no two events share an id (`langgraph dev` 0.16.7 sends neither `end` nor, for two
// events in one millisecond, distinct ids). With --reference they are reported but do not fail.
//
// Prints one JSON summary on stdout: {"ok", "checks": [{"name", "ok", "detail"?, "graphrun_only"?}],
// ...}. Exits 1 when a check fails or a call throws, 2 on bad usage.
import { Client } from "@langchain/langgraph-sdk";

const args = process.argv.slice(2);
const reference = args.includes("--reference");
const [url = process.env.GRAPHRUN_URL, assistant = process.env.GRAPHRUN_ASSISTANT ?? "chat"] = args.filter(
  (a) => !a.startsWith("--"),
);
if (!url || args.some((a) => a.startsWith("--") && a !== "--reference")) {
  console.error("usage: node conversation.mjs [--reference] URL [ASSISTANT]  (or set GRAPHRUN_URL)");
  process.exit(2);
}
// Words of the third reply: at the graph's 20 ms a token, long enough to still be running when the
// client leaves after READ_BEFORE_LEAVING tokens and rejoins.
const LONG_REPLY_WORDS = 150;
const READ_BEFORE_LEAVING = 10;
const DEADLINE_MS = Number(process.env.GRAPHRUN_JS_TEST_TIMEOUT_MS ?? 120_000);
const STREAM_MODE = ["values", "messages-tuple"];

const summary = { ok: false, url, assistant, reference, checks: [] };

function check(name, ok, detail, graphrunOnly = false) {
  const entry = { name, ok: !!ok };
  if (detail !== undefined) entry.detail = detail;
  if (graphrunOnly) entry.graphrun_only = true;
  summary.checks.push(entry);
}
const failed = () => summary.checks.filter((c) => !c.ok && !(reference && c.graphrun_only));

// What the script was doing, named in the summary when a call throws.
const step = (name) => {
  summary.step = name;
};

function finish(code) {
  summary.ok = code === 0;
  summary.failed = failed().map((c) => c.name);
  // Exit once written: a stream the script left may still hold the event loop open.
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`, () => process.exit(code));
}

const deadline = setTimeout(() => {
  summary.error = `timed out after ${DEADLINE_MS} ms`;
  finish(1);
}, DEADLINE_MS);

function text(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((b) => (typeof b === "string" ? b : (b?.text ?? ""))).join("");
  return "";
}

// `metadata` opens every stream the server sends and `end` may close it: they frame the run's events
// and are not part of its log, so a rejoin is compared on the events between them.
const isFrame = (part) => part.event === "metadata" || part.event === "end";
const logged = (parts) => parts.filter((p) => !isFrame(p));
const tokensOf = (parts) => parts.filter((p) => p.event === "messages").map((p) => text(p.data?.[0]?.content));
const brief = (p) => ({ id: p.id, event: p.event });
const same = (a, b) => a.id === b.id && a.event === b.event && JSON.stringify(a.data) === JSON.stringify(b.data);

function firstDifference(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i += 1) {
    if (!a[i] || !b[i] || !same(a[i], b[i])) return { index: i, got: a[i] && brief(a[i]), want: b[i] && brief(b[i]) };
  }
  return null;
}

function checkStream(label, parts, runId, closed = true) {
  const first = parts[0];
  check(`${label}: metadata first, with the run id`, first?.event === "metadata" && first.data?.run_id === runId, first);
  if (closed) check(`${label}: end closes the stream`, parts.at(-1)?.event === "end", parts.at(-1)?.event, true);
  const names = [...new Set(parts.map((p) => p.event))];
  const unexpected = names.filter((n) => !["metadata", "values", "messages", "end"].includes(n));
  check(`${label}: only the requested modes`, unexpected.length === 0, names);
  const ids = logged(parts).map((p) => p.id);
  check(`${label}: every event has an id`, ids.every(Boolean));
  const repeated = ids.filter((id, i) => ids.indexOf(id) !== i);
  check(`${label}: no two events share an id`, repeated.length === 0, repeated, true);
}

async function streamTurn(client, threadId, label, content, expected) {
  step(`${label}: stream`);
  let created;
  const parts = [];
  for await (const part of client.runs.stream(threadId, assistant, {
    input: { messages: [{ role: "user", content }] },
    streamMode: STREAM_MODE,
    streamResumable: true,
    onRunCreated: (meta) => {
      created = meta;
    },
  })) {
    parts.push(part);
  }
  const runId = created?.run_id ?? parts[0]?.data?.run_id;
  check(`${label}: Content-Location names the run on this thread`, created?.thread_id === threadId, created);
  checkStream(label, parts, runId);
  const tokens = tokensOf(parts);
  const reply = tokens.join("");
  check(`${label}: tokens stream one by one`, tokens.filter(Boolean).length > 1, tokens.length);
  check(`${label}: the tokens make the reply`, reply === expected, reply);
  const values = parts.filter((p) => p.event === "values").at(-1)?.data;
  const last = values?.messages?.at(-1);
  check(`${label}: last values end with the reply`, last?.type === "ai" && text(last.content) === expected, last);
  return { run_id: runId, events: parts.length, tokens: tokens.length, reply, messages: values?.messages?.length };
}

async function main() {
  const client = new Client({ apiUrl: url, apiKey: process.env.GRAPHRUN_API_KEY ?? null });

  step("create a thread");
  const thread = await client.threads.create({ metadata: { source: "graphrun-js-test" } });
  const threadId = thread.thread_id;
  summary.thread_id = threadId;
  check("thread created idle", thread.status === "idle", thread.status);

  const first = await streamTurn(client, threadId, "turn 1", "hello there", "turn 1: you said hello there");
  const second = await streamTurn(client, threadId, "turn 2", "how are you", "turn 2: you said how are you");
  summary.turns = [first, second];
  check("turn 2 sees turn 1's messages", second.messages === 4, second.messages);

  // Turn 3: a client that leaves part-way (a page reload) and rejoins where it left off.
  step("turn 3: stream part of it, then leave");
  const third = `turn 3: ${Array.from({ length: LONG_REPLY_WORDS }, (_, i) => `w${i + 1}`).join(" ")}`;
  let created;
  const leaving = new AbortController();
  const before = [];
  for await (const part of client.runs.stream(threadId, assistant, {
    input: { messages: [{ role: "user", content: `say ${LONG_REPLY_WORDS} words` }] },
    streamMode: STREAM_MODE,
    streamResumable: true,
    onDisconnect: "continue",
    signal: leaving.signal,
    onRunCreated: (meta) => {
      created = meta;
    },
  })) {
    before.push(part);
    if (tokensOf(before).length >= READ_BEFORE_LEAVING) break;
  }
  leaving.abort();
  const runId = created?.run_id ?? before[0]?.data?.run_id;
  const lastEventId = before.at(-1)?.id;
  checkStream("turn 3 before leaving", before, runId, false);
  step("turn 3: get the run");
  const statusOnRejoin = (await client.runs.get(threadId, runId)).status;

  step("turn 3: rejoin after the last event read");
  const after = [];
  for await (const part of client.runs.joinStream(threadId, runId, { lastEventId })) after.push(part);
  step("turn 3: replay from the start (-1)");
  const replay = [];
  for await (const part of client.runs.joinStream(threadId, runId, { lastEventId: "-1" })) replay.push(part);

  const seen = [...logged(before), ...logged(after)];
  const keys = seen.map((p) => JSON.stringify([p.id, p.event, p.data]));
  const repeated = seen.filter((_, i) => keys.indexOf(keys[i]) !== i).map(brief);
  summary.rejoin = {
    run_id: runId,
    last_event_id: lastEventId,
    status_on_rejoin: statusOnRejoin,
    events_before_leaving: before.length,
    events_rejoined: after.length,
    events_replayed: replay.length,
    rejoined_events: [...new Set(after.map((p) => p.event))],
  };
  check("turn 3: the rejoined stream ends with end", after.at(-1)?.event === "end", after.at(-1)?.event, true);
  check("turn 3: the replay ends with end", replay.at(-1)?.event === "end", replay.at(-1)?.event, true);
  check("turn 3: left on an event with an id", Boolean(lastEventId) && !isFrame(before.at(-1)), lastEventId);
  check("turn 3: rejoined after leaving, with tokens to come", tokensOf(after).length > 0, tokensOf(after).length);
  check("turn 3: no event repeated across leaving and rejoining", repeated.length === 0, repeated);
  const diff = firstDifference(seen, logged(replay));
  check("turn 3: read + rejoined events equal the full replay (-1)", diff === null, diff);
  const rejoinedReply = [...tokensOf(before), ...tokensOf(after)].join("");
  check("turn 3: the tokens read and rejoined make the reply", rejoinedReply === third, rejoinedReply.slice(-40));
  check("turn 3: the replay's tokens make the reply", tokensOf(replay).join("") === third);

  step("turn 3: get the finished run, the thread's state and the thread");
  const run = await client.runs.get(threadId, runId);
  check("turn 3: run ended success", run.status === "success", run.status);
  const state = await client.threads.getState(threadId);
  const contents = (state.values?.messages ?? []).map((m) => text(m.content));
  summary.state_messages = contents.length;
  check(
    "thread state holds the three turns",
    JSON.stringify(contents) ===
      JSON.stringify([
        "hello there",
        "turn 1: you said hello there",
        "how are you",
        "turn 2: you said how are you",
        `say ${LONG_REPLY_WORDS} words`,
        third,
      ]),
    contents.map((c) => c.slice(0, 40)),
  );
  const after3 = await client.threads.get(threadId);
  check("thread idle after its runs", after3.status === "idle", after3.status);
}

try {
  await main();
  clearTimeout(deadline);
  delete summary.step;
  finish(failed().length === 0 ? 0 : 1);
} catch (err) {
  clearTimeout(deadline);
  summary.error = `${err?.name ?? "Error"}: ${err?.message ?? err}`;
  finish(1);
}
