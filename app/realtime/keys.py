"""The realtime listener's web.AppKeys."""

from __future__ import annotations

import socketio
from aiohttp import web

from app.realtime.bridge import Bridge
from app.realtime.hooks.websocket import Front
from app.realtime.namespaces import AdminNamespace, LogsNamespace

sio_key = web.AppKey("sio", socketio.AsyncServer)
logs_ns_key = web.AppKey("logs_ns", LogsNamespace)
admin_ns_key = web.AppKey("admin_ns", AdminNamespace)
bridge_key = web.AppKey("bridge", Bridge)
front_key = web.AppKey("front", Front)
