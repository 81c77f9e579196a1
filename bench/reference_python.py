"""Bare python-socketio AsyncServer on aiohttp: the library floor Beacon is measured against.

`POST /start {"input": {"lines": M, "size": BYTES, "rate": LINES_PER_S}, "thread_id": ID}` (Beacon's
body; `workflow` is ignored) broadcasts M seed-shaped `log` payloads to every client of /logs, paced
like Beacon's `bench` workflow; `timestamp` is the send time (with "stamp": "due", when the line was due).
Usage: python bench/reference_python.py PORT [--uvloop]
"""

import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime

import socketio
from aiohttp import web

sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")  # compression: the library default
app, tasks = web.Application(), set[asyncio.Task[None]]()
sio.attach(app)
sio.on("connect", lambda sid, environ, auth=None: None, namespace="/logs")


async def broadcast(thread_id: str, lines: int, size: int, rate: float, yield_every: int, due: bool) -> None:
    started, wall = time.monotonic(), time.time()
    for i in range(1, lines + 1):
        head = f"line {i} "  # timestamp: now, or with stamp=due the time the line was due (rate > 0)
        at = datetime.fromtimestamp(min(time.time(), wall + (i - 1) / rate) if due and rate else time.time(), UTC)
        text, ts = head + "x" * max(0, size - len(head)), at.isoformat()
        line = dict(text=text, thread_id=thread_id, level="INFO", timestamp=ts, seq=i)  # Beacon's key order
        await sio.emit("log", line, namespace="/logs")
        if rate:
            if (ahead := started + i / rate - time.monotonic()) > 0.002:
                await asyncio.sleep(ahead)
        elif i % yield_every == 0:  # flat out: let the sockets' writer tasks run now and then
            await asyncio.sleep(0)


async def start(request: web.Request) -> web.Response:
    body = await request.json()
    spec, thread_id = body.get("input", body), body.get("thread_id") or uuid.uuid4().hex
    args = int(spec.get("lines", 1000)), int(spec.get("size", 100)), float(spec.get("rate", 0))
    args += max(1, int(spec.get("yield_every", 10))), spec.get("stamp") == "due"
    task = asyncio.create_task(broadcast(thread_id, *args))
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return web.json_response({"thread_id": thread_id, "status": "running"}, status=202)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "healthy"})


app.router.add_post("/start", start)
app.router.add_get("/health", health)

if __name__ == "__main__":
    loop = None
    if "--uvloop" in sys.argv:
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), loop=loop, print=None, access_log=None)
