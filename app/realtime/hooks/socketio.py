"""python-socketio's AsyncServer where Beacon needs more than its public API. Written against
python-socketio 5.18.1: it overrides `_engineio_server_class`, `_handle_eio_connect`,
`_handle_eio_message`, `_handle_eio_disconnect`, `_handle_connect` and `_handle_event`, and calls
`_send_packet`.

- a packet the library cannot decode, or an event that is not `[name, …]`, closes its connection
  with one warning (the library logs a traceback per packet);
- an Engine.IO connection that joins no namespace within `connect_timeout` is closed;
- an unknown namespace gets `{"message": "Invalid namespace"}` (Socket.IO v5: an object);
- the client's CLOSE closes the websocket on python-engineio's own handler too.
"""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
from socketio import packet as socketio_packet

from app.realtime.hooks.engineio import EngineIO

# What a client may send (Socket.IO v5): CONNECT, DISCONNECT, EVENT, ACK and their binary forms.
JOIN_TIMER = "beacon.join_timer"  # environ key: the connect_timeout check of a new connection
ACCEPTED_PACKETS = frozenset(
    (
        socketio_packet.CONNECT,
        socketio_packet.DISCONNECT,
        socketio_packet.EVENT,
        socketio_packet.ACK,
        socketio_packet.BINARY_EVENT,
        socketio_packet.BINARY_ACK,
    )
)


class Server(socketio.AsyncServer):
    def __init__(self, *, connect_timeout: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connect_timeout = connect_timeout

    def _engineio_server_class(self) -> type[EngineIO]:
        return EngineIO

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> None:
        await super()._handle_eio_connect(eio_sid, environ)
        loop = asyncio.get_running_loop()
        environ[JOIN_TIMER] = loop.call_later(self.connect_timeout, self._check_joined, eio_sid, environ)

    def _check_joined(self, eio_sid: str, environ: dict[str, Any]) -> None:
        """A connection that joined no namespace in time holds a socket for nothing: close it."""
        if self.environ.get(eio_sid) is not environ:
            return  # gone already
        if not any(self.manager.sid_from_eio_sid(eio_sid, ns) for ns in self.namespace_handlers):
            self.logger.info("closing %s: no namespace joined within %ss", eio_sid, self.connect_timeout)
            self.start_background_task(self.eio.disconnect, eio_sid)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: object) -> None:
        await super()._handle_eio_disconnect(eio_sid, reason)
        if reason == self.reason.CLIENT_DISCONNECT:  # the client's CLOSE packet
            self.eio.end_websocket(eio_sid)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: object) -> None:
        if (namespace or "/") not in self.namespace_handlers:  # Socket.IO v5: the error is an object
            error = {"message": "Invalid namespace"}
            pkt = self.packet_class(socketio_packet.CONNECT_ERROR, data=error, namespace=namespace or "/")
            await self._send_packet(eio_sid, pkt)
            return
        await super()._handle_connect(eio_sid, namespace, data)
        environ = self.environ.get(eio_sid)
        if environ is not None and self.manager.sid_from_eio_sid(eio_sid, namespace or "/"):
            timer = environ.pop(JOIN_TIMER, None)  # joined: cancelled, so idle sockets hold no timer
            if timer is not None:
                timer.cancel()

    async def _handle_eio_message(self, eio_sid: str, data: object) -> None:
        # Decoded here first, so that a packet the library cannot read closes its connection with
        # one warning instead of a traceback per packet.
        if isinstance(data, str):  # bytes are the attachments of a binary packet the library holds
            try:
                pkt = self.packet_class(encoded_packet=data)
            except Exception:
                await self._malformed(eio_sid, "undecodable")
                return
            if pkt.packet_type not in ACCEPTED_PACKETS:
                await self._malformed(eio_sid, "unexpected type")
                return
        await super()._handle_eio_message(eio_sid, data)

    async def _handle_event(self, eio_sid: str, namespace: str, id: int | None, data: object) -> None:
        # A client may not fire `connect`/`disconnect` handlers itself, nor name an event with a non-string.
        if not isinstance(data, list) or not data or not isinstance(data[0], str) or data[0] in self.reserved_events:
            await self._malformed(eio_sid, "not an event")
            return
        await super()._handle_event(eio_sid, namespace, id, data)

    async def _malformed(self, eio_sid: str, what: str) -> None:
        environ = self.environ.pop(eio_sid, None)
        if environ is None:  # closed already, for a packet that came before this one
            return
        self.logger.warning("closing %s from %s: malformed packet (%s)", eio_sid, environ.get("REMOTE_ADDR"), what)
        # Not awaited here: closing a polling socket waits for its next GET, and this runs in a POST.
        self.start_background_task(self.eio.disconnect, eio_sid)
