"""Token management for admins: list, create (the secret is shown once) and revoke."""

from __future__ import annotations

from aiohttp import web

from app.config import TOKEN_NAME
from app.errors import Invalid
from app.keys import services_key
from app.rest import schemas
from app.rest.middlewares import token_key
from app.rest.parsing import json_body

CREATE = schemas.TokenCreate()


async def list_tokens(request: web.Request) -> web.Response:
    return web.json_response({"tokens": request.app[services_key].tokens.listing()})


async def create_token(request: web.Request) -> web.Response:
    body = await json_body(request, CREATE)
    record, secret = await request.app[services_key].tokens.create(
        body["name"], body["role"], by=request[token_key].name
    )
    return web.json_response(
        {
            "name": record.name,
            "role": record.role,
            "token": secret,
            "created_at": record.created_at,
            "created_by": record.created_by,
        },
        status=201,
    )


async def revoke_token(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not TOKEN_NAME.match(name):
        raise Invalid("invalid token name", {"name": [schemas.TOKEN_NAME_RULE]})
    record = await request.app[services_key].tokens.revoke(name, by=request[token_key].name)
    return web.json_response(
        {"name": record.name, "role": record.role, "revoked_at": record.revoked_at, "revoked_by": record.revoked_by}
    )
