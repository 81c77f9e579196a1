// The seed's TypeScript client examples, run by the npm socket.io-client for the Python tests.
//
//   node flow.mjs <realtime url> <websocket|polling> <seconds>
//
// stdout, one JSON object a line:
//   {"ready":true,"transports":{"/logs":"websocket","/admin":"websocket"}}  both namespaces connected
//   {"ns":"/logs","event":"log","data":{...}}                                 every event received
//   {"ns":"/logs","ack":"subscribe","data":{...}}                             an emitWithAck answer
//   {"ns":"/logs","error":"..."}                                              connect_error / failed call
//   {"exit":"completed"|"timeout"|"stdin closed"}                            last line
// After a run_status `completed` the script still prints what arrives until the connection has
// been quiet for SETTLE_MS: the run's last log lines travel on another channel than its status.
// The token comes from the environment (BEACON_TOKEN) and goes in the connect auth payload.
// stdin, one JSON command a line: {"emit":"subscribe","ns":"/logs","data":{"thread_id":"…","since":0}}
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const [url, transport, seconds] = process.argv.slice(2);
if (!url || !["websocket", "polling"].includes(transport) || !(Number(seconds) > 0)) {
  console.error("usage: node flow.mjs <realtime url> <websocket|polling> <seconds>");
  process.exit(2);
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const options = { transports: [transport], reconnection: false, timeout: 10000 };
if (process.env.BEACON_TOKEN) options.auth = { token: process.env.BEACON_TOKEN };
// Exactly the seed's examples: io('http://localhost:7000/logs') and io('http://localhost:7000/admin').
const sockets = { "/logs": io(`${url}/logs`, options), "/admin": io(`${url}/admin`, options) };

const SETTLE_MS = 500;
let finished = false;
let settling = null;
function finish(reason) {
  if (finished) return;
  finished = true;
  for (const socket of Object.values(sockets)) socket.disconnect();
  process.stdout.write(JSON.stringify({ exit: reason }) + "\n", () => process.exit(0));
}

const connected = new Set();
for (const [ns, socket] of Object.entries(sockets)) {
  socket.on("connect", () => {
    connected.add(ns);
    if (connected.size === 2) {
      const transports = Object.fromEntries(
        Object.entries(sockets).map(([name, s]) => [name, s.io.engine.transport.name]),
      );
      out({ ready: true, transports });
    }
  });
  socket.on("connect_error", (err) => out({ ns, error: `connect_error: ${err.message}` }));
  socket.on("disconnect", (reason) => {
    if (!finished) out({ ns, disconnect: reason });
  });
}

function settle() {
  clearTimeout(settling);
  settling = setTimeout(() => finish("completed"), SETTLE_MS);
}

sockets["/logs"].on("log", (data) => {
  out({ ns: "/logs", event: "log", data });
  if (settling) settle();
});
sockets["/admin"].on("admin_event", (data) => {
  out({ ns: "/admin", event: "admin_event", data });
  if (settling || (data?.type === "run_status" && data.data?.status === "completed")) settle();
});

const commands = createInterface({ input: process.stdin });
commands.on("close", () => finish("stdin closed")); // the test (our parent) went away
commands.on("line", async (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    out({ error: `bad command: ${line}` });
    return;
  }
  const ns = cmd.ns ?? "/logs";
  try {
    const ack = await sockets[ns].timeout(10000).emitWithAck(cmd.emit, cmd.data);
    out({ ns, ack: cmd.emit, data: ack });
  } catch (err) {
    out({ ns, error: `${cmd.emit}: ${err.message}` });
  }
});

setTimeout(() => finish("timeout"), Number(seconds) * 1000);
