"""The web.AppKeys both listeners set; each listener's own keys live in its package's keys.py."""

from __future__ import annotations

from aiohttp import web

from app.config import Config
from app.listener import HeadTimers
from app.services import Services

config_key = web.AppKey("config", Config)
services_key = web.AppKey("services", Services)
started_key = web.AppKey("started", float)
head_timers_key = web.AppKey("head_timers", HeadTimers)
