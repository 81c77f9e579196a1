"""Every web.AppKey, typed, in one place."""

from __future__ import annotations

import asyncio

import socketio
from aiohttp import web

from app.config import Config
from app.runs.manager import RunManager
from app.services import Services

config_key = web.AppKey("config", Config)
services_key = web.AppKey("services", Services)
runs_key = web.AppKey("runs", RunManager)
sio_key = web.AppKey("sio", socketio.AsyncServer)
started_key = web.AppKey("started", float)
tasks_key = web.AppKey("tasks", list[asyncio.Task[None]])
