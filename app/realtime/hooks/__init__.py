"""Every reach into a library's private parts, for speed or for protocol exactness, lives here.

Each module names the versions it was written against: python-engineio 4.15.1, python-socketio
5.18.1 (checked at start-up, `engineio.usable`; `realtime.fast_path = false` turns the fast path
off) and aiohttp 3.14.5. Everything outside this package uses the libraries' public API.
"""
