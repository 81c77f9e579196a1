"""Schemas of the LangGraph Agent Server API: the bodies the SDKs send, the records they parse."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from app.names import THREAD_ID
from app.rest.jsonvalue import Json, JsonDict
from app.rest.schemas import THREAD_ID_RULE, AnyDict, AnyValue
from app.runs.jobs import STREAM_MODES

STRATEGIES = ("reject", "enqueue", "interrupt", "rollback")
THREAD_STATUSES = ("idle", "busy", "interrupted", "error")
RUN_STATUSES = ("pending", "running", "success", "error", "interrupted", "timeout")


class Lenient(Schema):
    """The SDKs send keys Beacon does not act on (langsmith_tracer, feedback_keys, ...): they pass."""

    class Meta:
        unknown = EXCLUDE


def _thread_id(**kw: object) -> fields.String:
    return fields.String(validate=validate.Regexp(THREAD_ID, error=THREAD_ID_RULE), **kw)  # type: ignore[arg-type]


class CommandIn(Lenient):
    resume = Json(allow_none=True)
    goto = Json(allow_none=True)
    update = Json(allow_none=True)


class StreamModes(fields.Field):
    """One stream mode or a list of them."""

    def _deserialize(self, value: object, attr: str | None, data: object, **kwargs: object) -> list[str]:
        modes = [value] if isinstance(value, str) else value
        if not isinstance(modes, list) or not all(isinstance(m, str) for m in modes):
            raise self.make_error("invalid")
        unknown = [m for m in modes if m not in STREAM_MODES]
        if unknown:
            raise self.make_error("unknown", modes=", ".join(unknown))
        return list(dict.fromkeys(modes))

    default_error_messages = {  # noqa: RUF012 (marshmallow merges it per class)
        "invalid": "a stream mode or a list of them",
        "unknown": "unsupported stream mode(s): {modes}; use " + ", ".join(STREAM_MODES),
    }


class RunCreate(Lenient):
    assistant_id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    input = Json(load_default=None, allow_none=True)
    command = fields.Nested(CommandIn, load_default=None, allow_none=True)
    config = JsonDict(load_default=None, allow_none=True)
    context = Json(load_default=None, allow_none=True)
    metadata = JsonDict(load_default=dict, allow_none=True)
    stream_mode = StreamModes(load_default=lambda: ["values"])
    stream_subgraphs = fields.Boolean(load_default=False)
    checkpoint_id = fields.String(load_default=None, allow_none=True)
    checkpoint = JsonDict(load_default=None, allow_none=True)
    interrupt_before = Json(load_default=None, allow_none=True)
    interrupt_after = Json(load_default=None, allow_none=True)
    multitask_strategy = fields.String(load_default="reject", validate=validate.OneOf(STRATEGIES))
    if_not_exists = fields.String(load_default="reject", validate=validate.OneOf(["create", "reject"]))
    on_completion = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(["delete", "keep"]))
    on_disconnect = fields.String(load_default="continue", validate=validate.OneOf(["cancel", "continue"]))


class ThreadCreate(Lenient):
    thread_id = _thread_id(load_default=None, allow_none=True)
    metadata = JsonDict(load_default=dict, allow_none=True)
    if_exists = fields.String(load_default="raise", validate=validate.OneOf(["raise", "do_nothing"]))


class ThreadPatch(Lenient):
    metadata = JsonDict(load_default=dict)


class ThreadSearch(Lenient):
    metadata = JsonDict(load_default=None, allow_none=True)
    status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(THREAD_STATUSES))
    ids = fields.List(_thread_id(), load_default=None, allow_none=True, validate=validate.Length(max=1000))
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class AssistantSearch(Lenient):
    graph_id = fields.String(load_default=None, allow_none=True)
    metadata = JsonDict(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class StateUpdate(Lenient):
    values = Json(load_default=None, allow_none=True)
    as_node = fields.String(load_default=None, allow_none=True)
    checkpoint_id = fields.String(load_default=None, allow_none=True)
    checkpoint = JsonDict(load_default=None, allow_none=True)


class StateAt(Lenient):
    checkpoint = JsonDict(required=True)
    subgraphs = fields.Boolean(load_default=False)


class HistoryRequest(Lenient):
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=1000))
    before = Json(load_default=None, allow_none=True)
    metadata = JsonDict(load_default=None, allow_none=True)
    checkpoint = JsonDict(load_default=None, allow_none=True)


class RunsListQuery(Lenient):
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))
    status = fields.String(load_default=None, validate=validate.OneOf(RUN_STATUSES))


class CancelQuery(Lenient):
    wait = fields.Boolean(load_default=False, truthy={"1", "true", "True"}, falsy={"0", "false", "False"})
    action = fields.String(load_default="interrupt", validate=validate.OneOf(["interrupt", "rollback"]))


class JoinStreamQuery(Lenient):
    stream_mode = fields.String(load_default=None, metadata={"description": "repeat it for several; empty: all"})
    cancel_on_disconnect = fields.Boolean(load_default=False)


# Responses (documented in /openapi.json; the views build them).
class CheckpointRef(Schema):
    thread_id = fields.String()
    checkpoint_ns = fields.String()
    checkpoint_id = fields.String(allow_none=True)
    checkpoint_map = fields.Dict(allow_none=True)


class InterruptOut(Schema):
    id = fields.String()
    value = AnyValue(allow_none=True)


class ThreadOut(Schema):
    thread_id = fields.String(required=True)
    created_at = fields.String()
    updated_at = fields.String()
    metadata = AnyDict()
    status = fields.String(validate=validate.OneOf(THREAD_STATUSES))
    values = AnyValue(allow_none=True)
    interrupts = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(InterruptOut)))


class TaskOut(Schema):
    id = fields.String()
    name = fields.String()
    error = fields.String(allow_none=True)
    interrupts = fields.List(fields.Nested(InterruptOut))
    checkpoint = fields.Nested(CheckpointRef, allow_none=True)
    state = fields.Raw(allow_none=True)
    result = AnyValue(allow_none=True)


class ThreadState(Schema):
    values = AnyValue()
    next = fields.List(fields.String())
    checkpoint = fields.Nested(CheckpointRef)
    metadata = AnyDict()
    created_at = fields.String(allow_none=True)
    parent_checkpoint = fields.Nested(CheckpointRef, allow_none=True)
    tasks = fields.List(fields.Nested(TaskOut))
    interrupts = fields.List(fields.Nested(InterruptOut))


class StateUpdated(Schema):
    checkpoint = fields.Nested(CheckpointRef)


class ThreadRunOut(Schema):
    run_id = fields.String(required=True)
    thread_id = fields.String(required=True)
    assistant_id = fields.String()
    created_at = fields.String()
    updated_at = fields.String()
    status = fields.String(validate=validate.OneOf(RUN_STATUSES))
    metadata = AnyDict()
    multitask_strategy = fields.String()
    kwargs = AnyDict()


class AssistantOut(Schema):
    assistant_id = fields.String()
    graph_id = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)
    config = fields.Dict()
    context = fields.Dict()
    metadata = fields.Dict()
    version = fields.Integer()
    created_at = fields.String()
    updated_at = fields.String()


class GraphSchemas(Schema):
    graph_id = fields.String()
    input_schema = fields.Dict(allow_none=True)
    output_schema = fields.Dict(allow_none=True)
    state_schema = fields.Dict(allow_none=True)
    config_schema = fields.Dict(allow_none=True)
    context_schema = fields.Dict(allow_none=True)


class Values(Schema):
    """The thread's values when the run ended (with `__interrupt__` when it waits)."""

    class Meta:
        unknown = EXCLUDE


class Ok(Schema):
    ok = fields.Boolean()


class Info(Schema):
    version = fields.String()
    flags = fields.Dict()
