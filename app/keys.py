"""Every web.AppKey, typed, in one place."""

from __future__ import annotations

import socketio
from aiohttp import web

from app.config import Config
from app.realtime.bridge import Bridge
from app.realtime.namespaces import AdminNamespace, LogsNamespace
from app.realtime.websocket import Front
from app.rest.probe import Probe
from app.runs.manager import RunManager
from app.services import Services

config_key = web.AppKey("config", Config)
services_key = web.AppKey("services", Services)
started_key = web.AppKey("started", float)
# REST
runs_key = web.AppKey("runs", RunManager)
probe_key = web.AppKey("probe", Probe)
# realtime
sio_key = web.AppKey("sio", socketio.AsyncServer)
logs_ns_key = web.AppKey("logs_ns", LogsNamespace)
admin_ns_key = web.AppKey("admin_ns", AdminNamespace)
bridge_key = web.AppKey("bridge", Bridge)
front_key = web.AppKey("front", Front)
