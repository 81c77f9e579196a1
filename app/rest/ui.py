"""The admin UI's static export at /ui/, and /ui/config.json telling it where Socket.IO listens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from app.errors import NotFound
from app.rest.csp import PagePolicy

# Next.js puts a content hash in every name under _next/static/; pages must be revalidated.
IMMUTABLE = "public, max-age=31536000, immutable"


def setup_ui(app: web.Application, ui_dir: Path, realtime_port: Callable[[], int | None]) -> None:
    """Serve `ui_dir` under /ui/ (path, path.html, path/index.html) and redirect / and /ui there."""
    root = ui_dir.resolve()
    policy = PagePolicy()

    async def config(request: web.Request) -> web.Response:
        # The page joins its own scheme and host name to this port (None: it derives one itself).
        # Read per request: the realtime listener may be on a port it picked (0) in this process.
        return web.json_response({"socketio_port": realtime_port()}, headers={"Cache-Control": "no-store"})

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/ui/" + (f"?{request.query_string}" if request.query_string else ""))

    async def page(request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"]
        path = find_file(root, rel)
        if path is None:
            if not (root / "index.html").is_file():
                raise NotFound("the admin UI is not built", {"ui_dir": str(ui_dir), "build": "make ui"})
            raise NotFound(f"no such page: {request.path}")
        headers = {"Cache-Control": IMMUTABLE if rel.startswith("_next/static/") else "no-cache"}
        if path.suffix == ".html":
            headers["Content-Security-Policy"] = policy(path, request.host)
        return web.FileResponse(path, headers=headers)

    app.router.add_get("/ui/config.json", config)
    app.router.add_get("/ui/{path:.*}", page)
    app.router.add_get("/ui", redirect)
    app.router.add_get("/", redirect)


def find_file(root: Path, rel: str) -> Path | None:
    """The file `rel` names inside `root`, trying `rel`, `rel.html`, `rel/index.html`; never outside."""
    if "\x00" in rel:
        return None
    try:
        base = (root / rel.lstrip("/")).resolve()
        for candidate in (base, base.with_name(base.name + ".html"), base / "index.html"):
            if candidate.is_relative_to(root) and candidate.is_file():
                return candidate
    except OSError:  # a name too long for the file system (ENAMETOOLONG) names no file either
        pass
    return None
