"""Fields for JSON values a client supplies: bounded in depth and size, refused in validation."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields

# LangGraph's serializer (orjson) gives up past 254 levels, once the run has already begun;
# real inputs, resume values and metadata nest a handful of levels.
MAX_DEPTH = 64
MAX_VALUES = 10_000  # scalars, keys and containers in one value


def check_json(value: Any, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES) -> None:
    """Raise ValidationError when `value` nests deeper than `max_depth` or holds too many values.

    Walks with a stack, never recursion: a value 1,000 levels deep must not raise RecursionError.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    count = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > max_values:
            raise ValidationError(f"holds more than {max_values} values")
        if isinstance(item, dict):
            children: Any = [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth >= max_depth:
            raise ValidationError(f"nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)


class Json(fields.Raw):
    """Any JSON value, within the depth and size limits."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        check_json(value)
        return super()._deserialize(value, attr, data, **kwargs)


class JsonDict(fields.Dict):
    """A JSON object, within the depth and size limits."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        result = super()._deserialize(value, attr, data, **kwargs)
        check_json(result)
        return result
