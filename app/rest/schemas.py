"""Marshmallow schemas: they validate requests and describe responses in /openapi.json."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.config import ROLES, TOKEN_NAME
from app.names import MAX_SEQ, THREAD_ID
from app.rest.jsonvalue import Json, JsonDict
from app.runs.events import to_json
from app.store import STATUSES

THREAD_ID_RULE = "must be 1-64 letters, digits or . _ : - (starting with a letter or digit)"
TOKEN_NAME_RULE = "must be 1-64 letters, digits or _ . @ - characters"


def _json_safe(value: Any) -> Any:
    """LangGraph state may hold anything: messages become their fields, the rest JSON lacks its str()."""
    return to_json(value)


class AnyValue(fields.Raw):
    """Any value, made JSON-safe when dumped."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return _json_safe(value)


class AnyDict(fields.Dict):
    """A mapping of any values, made JSON-safe when dumped."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return _json_safe(value)


def input_json_schema(schema: Schema | None) -> dict[str, Any]:
    """A workflow's input schema as JSON Schema, for forms and for clients."""
    if schema is None:
        return {"type": "object"}
    converter = MarshmallowPlugin()
    converter.init_spec(APISpec("x", "1", "3.0.3", plugins=[converter]))
    assert converter.converter is not None
    return converter.converter.schema2jsonschema(schema)  # type: ignore[no-any-return]


class Error(Schema):
    error = fields.String(required=True, metadata={"description": "machine-readable code"})
    message = fields.String(required=True)
    details = fields.Dict()
    request_id = fields.String()


class StartRequest(Schema):
    workflow = fields.String(required=True, validate=validate.Length(min=1, max=64))
    input = JsonDict(load_default=dict)
    thread_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Regexp(THREAD_ID, error=THREAD_ID_RULE)
    )


class StartResponse(Schema):
    thread_id = fields.String(required=True)
    workflow = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    created_at = fields.String(required=True)


class Pending(Schema):
    interrupt_id = fields.String(required=True)
    value = AnyValue(allow_none=True)
    deadline = fields.String(allow_none=True, metadata={"description": "when default_action applies (ISO 8601)"})
    default_action = fields.String(allow_none=True, validate=validate.OneOf(["approve", "reject"]))


class DecisionOut(Schema):
    interrupt_id = fields.String(required=True)
    decision = fields.String(required=True)
    comment = fields.String(allow_none=True)
    decided_at = fields.String(required=True)
    decided_by = fields.String(allow_none=True)
    data = fields.Raw(allow_none=True)


class Status(Schema):
    thread_id = fields.String(required=True)
    run_id = fields.String(allow_none=True, metadata={"description": "the thread's latest run"})
    workflow = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    next = fields.List(fields.String())
    pending = fields.List(fields.Nested(Pending))
    values = AnyDict()
    checkpoint_id = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()
    error = fields.String(allow_none=True)
    decisions = fields.List(fields.Nested(DecisionOut))


class ApproveRequest(Schema):
    decision = fields.String(load_default=None, validate=validate.OneOf(["approve", "reject"]))
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=4000))
    interrupt_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=128))
    data = Json(load_default=None, allow_none=True)
    resume = Json(
        allow_none=True, metadata={"description": "instead of decision: the value interrupt() returns, as sent"}
    )

    @validates_schema
    def one_answer(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("decision") is None) == ("resume" not in data):
            raise ValidationError("send exactly one of decision and resume", "decision")


class ApproveResponse(Schema):
    thread_id = fields.String(required=True)
    status = fields.String(required=True)
    decision = fields.Nested(DecisionOut, required=True)


class RunOut(Schema):
    thread_id = fields.String(required=True)
    workflow = fields.String(required=True)
    status = fields.String(required=True)
    input = fields.Dict()
    created_at = fields.String()
    updated_at = fields.String()
    error = fields.String(allow_none=True)


class RunsQuery(Schema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    workflow = fields.String(validate=validate.Length(min=1, max=64))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(validate=validate.Length(min=1, max=512))


class RunsPage(Schema):
    runs = fields.List(fields.Nested(RunOut), required=True)
    total = fields.Integer(required=True)
    next_cursor = fields.String(allow_none=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())


class ApprovalsQuery(Schema):
    workflow = fields.String(validate=validate.Length(min=1, max=64))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(validate=validate.Length(min=1, max=512))


class ApprovalOut(Schema):
    thread_id = fields.String(required=True)
    workflow = fields.String(required=True)
    interrupt_id = fields.String(required=True)
    value = fields.Raw(allow_none=True, metadata={"description": "the interrupt's value: the question asked"})
    waiting_since = fields.String(required=True, metadata={"description": "when the run began to wait"})
    deadline = fields.String(allow_none=True, metadata={"description": "when default_action applies, if ever"})
    default_action = fields.String(allow_none=True, validate=validate.OneOf(["approve", "reject"]))
    seconds_left = fields.Float(allow_none=True, metadata={"description": "until the deadline, at answer time"})


class ApprovalsPage(Schema):
    approvals = fields.List(fields.Nested(ApprovalOut), required=True, metadata={"description": "oldest first"})
    total = fields.Integer(required=True)
    next_cursor = fields.String(allow_none=True)


class LogsQuery(Schema):
    after = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_SEQ))
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10000))


class LogLineOut(Schema):
    text = fields.String(required=True)
    thread_id = fields.String(required=True)
    level = fields.String(required=True)
    timestamp = fields.String(required=True)
    seq = fields.Integer(required=True)


class LogsPage(Schema):
    thread_id = fields.String(required=True)
    lines = fields.List(fields.Nested(LogLineOut), required=True)
    last_seq = fields.Integer(required=True, metadata={"description": "highest seq stored for the thread"})
    next_after = fields.Integer(allow_none=True, metadata={"description": "pass as `after` for the next page"})


class HistoryQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class Checkpoint(Schema):
    checkpoint_id = fields.String(required=True)
    parent_checkpoint_id = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)
    metadata = AnyDict()
    next = fields.List(fields.String())
    values = AnyDict()


class History(Schema):
    thread_id = fields.String(required=True)
    checkpoints = fields.List(fields.Nested(Checkpoint), required=True)


class Deleted(Schema):
    thread_id = fields.String(required=True)
    deleted = fields.Dict(
        keys=fields.String(), values=fields.Integer(), required=True, metadata={"description": "rows removed per table"}
    )


class AuditQuery(Schema):
    thread_id = fields.String(validate=validate.Regexp(THREAD_ID, error=THREAD_ID_RULE))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class AuditEntryOut(Schema):
    at = fields.String(required=True)
    actor = fields.String(allow_none=True, metadata={"description": "a token's name, or retention"})
    action = fields.String(required=True, metadata={"description": "delete or retention"})
    thread_id = fields.String(required=True)
    detail = fields.Dict(required=True, metadata={"description": "the thread's status then, rows removed per table"})


class AuditLog(Schema):
    entries = fields.List(fields.Nested(AuditEntryOut), required=True)


class Export(Schema):
    thread_id = fields.String(required=True)
    exported_at = fields.String(required=True)
    run = fields.Dict(required=True, metadata={"description": "as GET /status/{thread_id} answers"})
    runs = fields.List(fields.Dict(), required=True, metadata={"description": "every run of the thread"})
    decisions = fields.List(fields.Dict(), required=True)
    checkpoints = fields.List(fields.Nested(Checkpoint), required=True, metadata={"description": "newest first"})
    logs = fields.List(fields.Nested(LogLineOut), required=True, metadata={"description": "every stored line"})


class WorkflowOut(Schema):
    name = fields.String(required=True)
    description = fields.String()
    input_schema = fields.Dict(metadata={"description": "JSON Schema of the input"})


class Workflows(Schema):
    workflows = fields.List(fields.Nested(WorkflowOut), required=True)


class Health(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["healthy", "degraded"]))
    service = fields.String(required=True)
    port = fields.Integer(required=True)
    store = fields.Dict()
    pubsub = fields.Dict()


class Stats(Schema):
    node = fields.String()
    uptime_seconds = fields.Float()
    runs = fields.Dict(keys=fields.String(), values=fields.Integer())
    active_tasks = fields.Integer()
    log_lines_written = fields.Integer()
    bus = fields.Dict()
    retention = fields.Dict(
        allow_none=True, metadata={"description": "settings, totals removed by this node, its last pass"}
    )


class TokenCreate(Schema):
    name = fields.String(required=True, validate=validate.Regexp(TOKEN_NAME, error=TOKEN_NAME_RULE))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class TokenOut(Schema):
    name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    source = fields.String(required=True, metadata={"description": "config, file (the generated admin token) or api"})
    created_at = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)


class TokenList(Schema):
    tokens = fields.List(fields.Nested(TokenOut), required=True)


class TokenCreated(Schema):
    name = fields.String(required=True)
    role = fields.String(required=True)
    token = fields.String(required=True, metadata={"description": "the secret: shown once, only its SHA-256 is kept"})
    created_at = fields.String(required=True)
    created_by = fields.String(allow_none=True)


class TokenRevoked(Schema):
    name = fields.String(required=True)
    role = fields.String(required=True)
    revoked_at = fields.String(required=True)
    revoked_by = fields.String(allow_none=True)


class WebhooksQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(validate=validate.Length(min=1, max=512))


class WebhookOut(Schema):
    url = fields.String(required=True, metadata={"description": "user:password and query values masked"})
    events = fields.List(fields.String(), required=True)
    timeout = fields.Float()
    attempts = fields.Integer()
    backoff = fields.Float()


class DeliveryOut(Schema):
    id = fields.String(required=True, metadata={"description": "the X-Beacon-Delivery header"})
    hook = fields.String(required=True)
    event = fields.String(required=True)
    thread_id = fields.String(required=True)
    node = fields.String(metadata={"description": "the process that sends it"})
    state = fields.String(required=True, validate=validate.OneOf(["pending", "delivered", "failed"]))
    attempts = fields.Integer(required=True)
    status_code = fields.Integer(allow_none=True, metadata={"description": "the receiver's last answer"})
    error = fields.String(allow_none=True, metadata={"description": "why the last attempt failed"})
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)
    payload = fields.Dict(metadata={"description": "the JSON body sent"})


class Webhooks(Schema):
    hooks = fields.List(fields.Nested(WebhookOut), required=True)
    deliveries = fields.List(fields.Nested(DeliveryOut), required=True, metadata={"description": "newest first"})
    next_cursor = fields.String(allow_none=True)
    backlog = fields.Integer(metadata={"description": "deliveries this node is sending or will retry"})
