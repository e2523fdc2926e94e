"""A write path under botocore's request serializer: DynamoDB request bodies by ``json.dumps``.

botocore's JSON serializer walks the service model for every value of a request (an item's every
attribute, every key of a batch) to learn which ones need converting, then calls ``json.dumps`` on
the copy it built. For DynamoDB's data operations the only values it converts are binary ones
(``B``, ``BS``: base64); every other value is sent as given. So a request with no binary value is
serialized here by ``json.dumps`` of the parameters themselves: the same body, byte for byte (the
same keys in the same order), the same headers, at a fraction of the cost.

Everything else stays botocore's: a client that validates its parameters (botocore does it in the
serializer it wraps) still validates every request first, with botocore's validator; a request
holding bytes (``json.dumps`` refuses them), with a parameter the operation does not declare, or of
another operation, goes to botocore's serializer unchanged; signing, retries and errors never pass
through here.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ParamValidationError
from botocore.validate import ParamValidationDecorator

# DynamoDB's data operations; their input shapes hold no timestamp, float or document value, and
# no member is renamed on the wire (checked by tests/unit/test_fast_serialize.py against the model).
FAST_OPERATIONS = frozenset({
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem",
    "TransactGetItems", "TransactWriteItems",
})
_MARK = "_datalayer_fast_serialize"


class FastSerializer:
    """Serializes DynamoDB data-operation requests by ``json.dumps``; the rest by botocore's serializer."""

    def __init__(self, serializer: Any) -> None:
        self._validator: Any = None
        if isinstance(serializer, ParamValidationDecorator):  # validate as it would, then serialize
            self._validator = getattr(serializer, "_param_validator")  # noqa: B009 (untyped in the stubs)
            serializer = getattr(serializer, "_serializer")  # noqa: B009
        self._serializer = serializer
        self._members: dict[str, frozenset[str]] = {}
        self.fast_requests = 0  # how many requests took the fast path (read by the tests)

    def serialize_to_request(self, parameters: Any, operation_model: Any) -> dict[str, Any]:
        """The request dict botocore's serializer would build for ``parameters``."""
        if self._validator is not None and operation_model.input_shape is not None:
            report = self._validator.validate(parameters, operation_model.input_shape)
            if report.has_errors():
                raise ParamValidationError(report=report.generate_report())
        name = operation_model.name
        members = self._members.get(name)
        if members is None:
            members = self._declared(operation_model)
            self._members[name] = members
        if members and isinstance(parameters, dict) and members.issuperset(parameters):
            try:
                body = json.dumps(parameters).encode("utf-8")
            except (TypeError, ValueError):  # bytes (binary attributes), or a value botocore must see
                pass
            else:
                self.fast_requests += 1
                metadata = operation_model.metadata
                return {
                    "url_path": "/",
                    "query_string": "",
                    "method": operation_model.http.get("method", "POST"),
                    "headers": {
                        "X-Amz-Target": f"{metadata['targetPrefix']}.{name}",
                        "Content-Type": f"application/x-amz-json-{metadata['jsonVersion']}",
                    },
                    "body": body,
                }
        request: dict[str, Any] = self._serializer.serialize_to_request(parameters, operation_model)
        return request

    @staticmethod
    def _declared(operation_model: Any) -> frozenset[str]:
        """The operation's parameter names, when its requests can be serialized here (else empty)."""
        if (operation_model.name not in FAST_OPERATIONS or operation_model.endpoint is not None
                or operation_model.metadata.get("protocol") != "json" or operation_model.input_shape is None):
            return frozenset()
        return frozenset(operation_model.input_shape.members)


def install(client: Any) -> Any:
    """Serialize ``client``'s DynamoDB data requests by ``json.dumps`` where that is exact (idempotent)."""
    if getattr(client, _MARK, False):
        return client
    client._serializer = FastSerializer(client._serializer)
    setattr(client, _MARK, True)
    return client
