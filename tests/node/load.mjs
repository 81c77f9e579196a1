// Many npm socket.io-client connections on /logs for the load rows of TESTPLAN.md (L1, L2).
//
//   node load.mjs <realtime url> <clients> <thread,thread,…> <lines per thread (at least)> <seconds>
//
// Client i subscribes to thread i mod T (connected with auth {token, firehose: false}) and
// counts what it receives: seqs missing or repeated, and the delay from each line's `timestamp`
// (the server's logging call) to its arrival. After a disconnect a client reconnects by itself
// and subscribes again with `since` = the last seq it has (the documented recovery).
//
// stdout, one JSON object a line:
//   {"ready": N}                                 every client connected and subscribed
//   {"reconnected": N, "slowest_ms": …}          after a disconnect, once every client is back
//   {"done": true|false, "clients": N, "lines": …, "missing": …, "duplicates": …,
//    "p50_ms": …, "p99_ms": …, "max_ms": …, "recovered_false": …, "errors": […]}  last line
// The token comes from BEACON_TOKEN. The script ends by itself after <seconds>.
import { io } from "socket.io-client";

const [url, clientsArg, threadsArg, linesArg, secondsArg] = process.argv.slice(2);
const clients = Number(clientsArg);
const threads = (threadsArg || "").split(",").filter(Boolean);
const expected = Number(linesArg);
const seconds = Number(secondsArg);
if (!url || !(clients > 0) || !threads.length || !(expected > 0) || !(seconds > 0)) {
  console.error("usage: node load.mjs <realtime url> <clients> <thread,thread,…> <lines per thread> <seconds>");
  process.exit(2);
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const latencies = [];
const errors = [];
function error(text) {
  if (errors.push(text) <= 5) out({ error: text }); // the first few at once, for a test that times out
}
let recoveredFalse = 0;
let ready = 0;
let finished = false;
const states = [];

function finish(done) {
  if (finished) return;
  finished = true;
  let missing = 0;
  let duplicates = 0;
  let lines = 0;
  for (const s of states) {
    s.socket.disconnect();
    lines += s.seen.size;
    duplicates += s.duplicates;
    for (let seq = 1; seq <= Math.max(expected, s.last); seq++) if (!s.seen.has(seq)) missing++;
  }
  latencies.sort((a, b) => a - b);
  const q = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : null);
  const summary = {
    done,
    clients,
    lines,
    missing,
    duplicates,
    p50_ms: q(0.5),
    p99_ms: q(0.99),
    max_ms: latencies.length ? latencies[latencies.length - 1] : null,
    recovered_false: recoveredFalse,
    errors: errors.slice(0, 20),
  };
  process.stdout.write(JSON.stringify(summary) + "\n", () => process.exit(0));
}

// A run logs its N lines and then a few of its own ("run completed"): at least N is complete.
function complete(s) {
  return s.seen.size >= expected;
}

function checkDone() {
  if (states.length === clients && states.every(complete)) finish(true);
}

let down = 0; // clients currently disconnected
let downSince = null;
let slowest = 0;

for (let i = 0; i < clients; i++) {
  const thread_id = threads[i % threads.length];
  const socket = io(`${url}/logs`, {
    transports: ["websocket"],
    forceNew: true,
    auth: { token: process.env.BEACON_TOKEN, firehose: false },
    reconnectionDelay: 200,
    reconnectionDelayMax: 2000,
    timeout: 10000,
  });
  const s = { socket, thread_id, seen: new Set(), last: 0, duplicates: 0, subscribed: false, lostAt: null };
  states.push(s);

  socket.on("log", (line) => {
    if (line.thread_id !== thread_id) return;
    if (s.seen.has(line.seq)) s.duplicates++;
    else {
      s.seen.add(line.seq);
      latencies.push(Date.now() - Date.parse(line.timestamp));
    }
    if (line.seq > s.last) s.last = line.seq;
    if (complete(s)) checkDone();
  });
  socket.on("connect", async () => {
    try {
      const ack = await socket.timeout(10000).emitWithAck("subscribe", { thread_id, since: s.last });
      if (ack.error) throw new Error(ack.error);
      if (!ack.recovered) recoveredFalse++;
    } catch (err) {
      error(`client ${i}: subscribe: ${err.message}`);
      return;
    }
    if (!s.subscribed) {
      s.subscribed = true;
      if (++ready === clients) out({ ready });
    } else if (s.lostAt !== null) {
      slowest = Math.max(slowest, Date.now() - s.lostAt);
      s.lostAt = null;
      if (--down === 0) out({ reconnected: clients, slowest_ms: slowest, since_first_loss_ms: Date.now() - downSince });
    }
  });
  socket.on("disconnect", () => {
    if (finished || s.lostAt !== null) return;
    s.lostAt = Date.now();
    if (down++ === 0) downSince = s.lostAt;
  });
  socket.on("connect_error", (err) => {
    if (!s.subscribed) error(`client ${i}: connect_error: ${err.message}`);
  });
}

setTimeout(() => finish(false), seconds * 1000);
