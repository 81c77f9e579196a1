// The npm @langchain/langgraph-sdk Client against Beacon's Agent Server API, for tests/test_node_sdk.py.
//
//   BEACON_TOKEN=… node agent.mjs <rest url> <case> '<json args>'
//
// Cases (graphs from tests/graphs/langgraph.json):
//   hitl     threads.create; runs.stream of `chat` with four stream modes; threads.get and
//            getState while it waits; resume with command.resume through runs.wait; threads.get.
//   abort    a run of `ticks` (args.via: "create" → runs.create, then joinStream from "-1";
//            "stream" → runs.stream), read with an AbortController, aborted after args.k events;
//            then joinStream from the last event id seen, then a full replay from "-1".
//   follow   one stream of a `ticks` run (args.via as above) read to its end, whatever happens to
//            the connection meanwhile: the test cuts it and the SDK reconnects by itself.
//
// stdout, one JSON object a line: {"progress": n, "event": …, "id": …} for each event of a
// stream the test may act on mid-run (abort, follow), then {"result": {…}} or {"error": "…"}.
// The token goes in as the Client's apiKey (sent as x-api-key).
import { Client } from "@langchain/langgraph-sdk";

const [url, name, rawArgs] = process.argv.slice(2);
const args = JSON.parse(rawArgs || "{}");
if (!url || !name) {
  console.error("usage: node agent.mjs <rest url> <hitl|abort|follow> '<json args>'");
  process.exit(2);
}
const out = (obj) => new Promise((resolve) => process.stdout.write(JSON.stringify(obj) + "\n", resolve));
// No retries of plain requests: a failure should show, not be papered over.
const client = new Client({ apiUrl: url, apiKey: process.env.BEACON_TOKEN, callerOptions: { maxRetries: 0 } });
const part = (p) => ({ event: p.event, data: p.data, id: p.id ?? null });

async function collect(stream) {
  const parts = [];
  for await (const p of stream) parts.push(part(p));
  return parts;
}

async function hitl() {
  const thread = await client.threads.create({ metadata: { user: "node" } });
  const tid = thread.thread_id;
  let created = null;
  const events = await collect(
    client.runs.stream(tid, "chat", {
      input: { messages: ["hi"] },
      streamMode: ["values", "updates", "messages-tuple", "custom"],
      onRunCreated: (meta) => {
        created = meta;
      },
    }),
  );
  const waiting = await client.threads.get(tid);
  const state = await client.threads.getState(tid);
  const done = await client.runs.wait(tid, "chat", { command: { resume: { ok: true, note: "from node" } } });
  const after = await client.threads.get(tid);
  const runs = await client.runs.list(tid);
  return { thread, created, events, waiting, state, done, after, runs };
}

// A `ticks` run and the first stream of it: joinStream from the first event, or runs.stream.
async function start(tid, signal) {
  const payload = { input: { steps: args.steps, delay: args.delay }, streamMode: ["values", "updates", "custom"] };
  if (args.via === "stream") {
    let meta = null;
    const stream = client.runs.stream(tid, "ticks", { ...payload, signal, onRunCreated: (m) => (meta = m) });
    return { stream, runId: () => meta?.run_id };
  }
  const run = await client.runs.create(tid, "ticks", payload);
  return { stream: client.runs.joinStream(tid, run.run_id, { lastEventId: "-1", signal }), runId: () => run.run_id };
}

async function abort() {
  const tid = (await client.threads.create()).thread_id;
  const controller = new AbortController();
  const { stream, runId } = await start(tid, controller.signal);
  const first = [];
  let aborted = null;
  try {
    for await (const p of stream) {
      first.push(part(p));
      await out({ progress: first.length, event: p.event, id: p.id ?? null });
      if (first.length === args.k) {
        controller.abort();
        aborted = "after k";
      }
    }
  } catch (err) {
    if (err?.name !== "AbortError") throw err;
    aborted = "threw AbortError";
  }
  const run_id = runId();
  // Still going? (the cut must have happened mid-run for this to test anything)
  const statusAfterAbort = (await client.runs.get(tid, run_id)).status;
  const lastEventId = first.at(-1).id;
  const rest = await collect(client.runs.joinStream(tid, run_id, { lastEventId }));
  const status = (await client.runs.get(tid, run_id)).status;
  const replay = await collect(client.runs.joinStream(tid, run_id, { lastEventId: "-1" }));
  const state = await client.threads.getState(tid);
  return { run_id, aborted, statusAfterAbort, lastEventId, first, rest, replay, status, values: state.values };
}

async function follow() {
  const tid = (await client.threads.create()).thread_id;
  const { stream, runId } = await start(tid, undefined);
  const parts = [];
  for await (const p of stream) {
    parts.push(part(p));
    await out({ progress: parts.length, event: p.event, id: p.id ?? null });
  }
  const run_id = runId();
  const replay = await collect(client.runs.joinStream(tid, run_id, { lastEventId: "-1" }));
  const status = (await client.runs.get(tid, run_id)).status;
  return { run_id, parts, replay, status };
}

const cases = { hitl, abort, follow };
if (!cases[name]) {
  console.error(`unknown case ${name}`);
  process.exit(2);
}
try {
  await out({ result: await cases[name]() });
  process.exit(0);
} catch (err) {
  await out({ error: String(err?.stack || err), cause: err?.cause ? String(err.cause) : null });
  process.exit(1);
}
