"""The library versions the realtime fast path was verified with (issue 14): a dependency bump fails here first."""

from __future__ import annotations

import importlib.metadata

import socketio

from app.realtime.hooks.engineio import TESTED, EngineIO
from app.realtime.hooks.socketio import Server


def test_the_fast_path_is_on_for_the_installed_versions() -> None:
    installed = {dist: importlib.metadata.version(dist) for dist in TESTED}
    print("fast path verified with", ", ".join(f"{d} {' / '.join(v)}" for d, v in TESTED.items()))
    for dist, version in installed.items():
        assert version in TESTED[dist], (
            f"{dist} {version} is installed, the fast path was verified with {TESTED[dist]}: run the realtime "
            "tests on both paths (BEACON_TEST_FAST_PATH=off) and add the version to TESTED"
        )
    sio = Server(async_mode="aiohttp")
    assert isinstance(sio.eio, EngineIO) and sio.eio.why_not is None and sio.eio.lean


def test_the_setting_turns_it_off() -> None:
    sio = Server(async_mode="aiohttp", fast_path=False)
    assert isinstance(sio, socketio.AsyncServer) and not sio.eio.lean
    assert sio.eio.why_not == "realtime.fast_path is off"
