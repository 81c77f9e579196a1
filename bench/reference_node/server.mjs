// Bare npm socket.io 4.8 server: the peer users would otherwise pick (bench/run.py measures Beacon against it).
// POST /start {"input": {"lines", "size", "rate"}, "thread_id"} broadcasts seed-shaped `log` payloads to /logs,
// paced like Beacon's `bench` workflow; `timestamp` is the send time (with "stamp": "due", when the line was due).
// Usage: node bench/reference_node/server.mjs PORT
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { Server } from 'socket.io';

const now = () => performance.timeOrigin + performance.now();
const iso = (ms) => { // ISO 8601 UTC with microseconds, like Python's datetime.isoformat()
  const us = Math.floor(ms * 1000);
  return `${new Date(Math.floor(us / 1000)).toISOString().slice(0, 19)}.${String(us % 1e6).padStart(6, '0')}+00:00`;
};

async function broadcast(threadId, lines, size, rate, yieldEvery, due) {
  const started = performance.now(), wall = now();
  for (let i = 1; i <= lines; i++) {
    const head = `line ${i} `, at = due && rate ? Math.min(now(), wall + ((i - 1) * 1000) / rate) : now();
    logs.emit('log', { text: head + 'x'.repeat(Math.max(0, size - head.length)), thread_id: threadId, level: 'INFO', timestamp: iso(at), seq: i });
    const ahead = rate ? started + (i * 1000) / rate - performance.now() : 0;
    if (ahead > 2) await sleep(ahead);
    else if (!rate && i % yieldEvery === 0) await tick(); // flat out: let the sockets write now and then
  }
}

const http = createServer((req, res) => {
  const reply = (status, body) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  if (req.method === 'GET' && req.url === '/health') return reply(200, { status: 'healthy' });
  if (req.method !== 'POST' || req.url !== '/start') return reply(404, { error: 'not_found' });
  let raw = '';
  req.on('data', (chunk) => { raw += chunk; });
  req.on('end', () => {
    const body = JSON.parse(raw || '{}'), spec = body.input ?? body, threadId = body.thread_id ?? randomUUID();
    broadcast(threadId, Number(spec.lines ?? 1000), Number(spec.size ?? 100), Number(spec.rate ?? 0),
      Math.max(1, Number(spec.yield_every ?? 10)), spec.stamp === 'due');
    reply(202, { thread_id: threadId, status: 'running' });
  });
});
const io = new Server(http, { cors: { origin: '*' }, perMessageDeflate: false }); // no compression (the default)
const logs = io.of('/logs');
http.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => console.log(`listening on ${http.address().port}`));
