"""The REST listener's web.AppKeys."""

from __future__ import annotations

from aiohttp import web

from app.rest.probe import Probe
from app.runs.manager import RunManager
from app.runs.streams import Followers

runs_key = web.AppKey("runs", RunManager)
probe_key = web.AppKey("probe", Probe)
followers_key = web.AppKey("followers", Followers)
