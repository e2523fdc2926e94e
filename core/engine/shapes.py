"""DynamoDB's data-plane shapes, declared once: what the engine needs of botocore's service model.

botocore walks its service model for every value it sends and receives. The engine needs far less:
which members each operation takes, where attribute values (``AttributeValue``, whose ``B`` and
``BS`` are base64 on the wire) sit in a request, and the full member list of each response and error
structure (botocore keeps only modeled members, in model order, and drops ``null`` ones). This
module states that as small plans, so no service model is loaded at run time.
``tests/unit/test_engine_shapes.py`` derives every plan from botocore's own model and checks that
they are equal: a botocore upgrade that changes a shape fails there, loudly.

A plan is one of: ``RAW`` (a value botocore passes through: string, number, boolean, enum),
``BLOB``, ``AV`` (an attribute value: a plain structure of ``AV_MEMBERS`` in this model, not a
tagged union), ``Struct`` (members in model order), ``MapOf`` or ``ListOf``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Union


@dataclass(frozen=True, slots=True)
class Struct:
    """A structure: its members in model order (a name maps to the plan of its value)."""

    members: tuple[tuple[str, Plan], ...]


@dataclass(frozen=True, slots=True)
class MapOf:
    """A map with string keys; every value has the plan ``value``."""

    value: Plan


@dataclass(frozen=True, slots=True)
class ListOf:
    """A list; every member has the plan ``member`` (``null`` members stay ``None``, as in botocore)."""

    member: Plan


RAW: Final = "raw"
BLOB: Final = "blob"
AV: Final = "av"
Plan = Union[str, Struct, MapOf, ListOf]  # noqa: UP007 (a runtime alias, used before 3.12's `type`)


def struct(*members: tuple[str, Plan]) -> Struct:
    """A ``Struct`` of ``(name, plan)`` pairs."""
    return Struct(tuple(members))


def raw(*names: str) -> tuple[tuple[str, Plan], ...]:
    """``(name, RAW)`` for each name: a structure's pass-through members."""
    return tuple((name, RAW) for name in names)


ATTRIBUTE_MAP: Final = MapOf(AV)
# The members of an AttributeValue (a tagged union), in model order.
AV_MEMBERS: Final[tuple[tuple[str, Plan], ...]] = (
    ("S", RAW), ("N", RAW), ("B", BLOB), ("SS", ListOf(RAW)), ("NS", ListOf(RAW)),
    ("BS", ListOf(BLOB)), ("M", ATTRIBUTE_MAP), ("L", ListOf(AV)), ("NULL", RAW), ("BOOL", RAW),
)

_CAPACITY: Final = struct(*raw("ReadCapacityUnits", "WriteCapacityUnits", "CapacityUnits"))
_CONSUMED: Final = struct(
    *raw("TableName", "CapacityUnits", "ReadCapacityUnits", "WriteCapacityUnits"),
    ("Table", _CAPACITY), ("LocalSecondaryIndexes", MapOf(_CAPACITY)),
    ("GlobalSecondaryIndexes", MapOf(_CAPACITY)),
    ("VectorIndexes", MapOf(struct(*raw("VectorSearchRequestBytes", "VectorWriteRequestBytes")))),
)
_COLLECTION_METRICS: Final = struct(
    ("ItemCollectionKey", ATTRIBUTE_MAP), ("SizeEstimateRangeGB", ListOf(RAW)),
)
_WRITE_OUTPUT: Final = struct(
    ("Attributes", ATTRIBUTE_MAP), ("ConsumedCapacity", _CONSUMED),
    ("ItemCollectionMetrics", _COLLECTION_METRICS),
)
_PAGE_OUTPUT: Final = struct(
    ("Items", ListOf(ATTRIBUTE_MAP)), *raw("Count", "ScannedCount"), ("LastEvaluatedKey", ATTRIBUTE_MAP),
    ("ConsumedCapacity", _CONSUMED),
)
_KEYS_AND_ATTRIBUTES: Final = struct(
    ("Keys", ListOf(ATTRIBUTE_MAP)), ("AttributesToGet", ListOf(RAW)),
    *raw("ConsistentRead", "ProjectionExpression"),
    ("ExpressionAttributeNames", MapOf(RAW)),
)
_WRITE_REQUEST: Final = struct(
    ("PutRequest", struct(("Item", ATTRIBUTE_MAP))), ("DeleteRequest", struct(("Key", ATTRIBUTE_MAP))),
)
_CONSUMED_LIST: Final = ListOf(_CONSUMED)

# Operation -> the plan of its output structure.
OUTPUTS: Final[dict[str, Struct]] = {
    "GetItem": struct(("Item", ATTRIBUTE_MAP), ("ConsumedCapacity", _CONSUMED)),
    "PutItem": _WRITE_OUTPUT,
    "UpdateItem": _WRITE_OUTPUT,
    "DeleteItem": _WRITE_OUTPUT,
    "Query": _PAGE_OUTPUT,
    "Scan": _PAGE_OUTPUT,
    "BatchGetItem": struct(
        ("Responses", MapOf(ListOf(ATTRIBUTE_MAP))), ("UnprocessedKeys", MapOf(_KEYS_AND_ATTRIBUTES)),
        ("ConsumedCapacity", _CONSUMED_LIST),
    ),
    "BatchWriteItem": struct(
        ("UnprocessedItems", MapOf(ListOf(_WRITE_REQUEST))),
        ("ItemCollectionMetrics", MapOf(ListOf(_COLLECTION_METRICS))), ("ConsumedCapacity", _CONSUMED_LIST),
    ),
    "TransactGetItems": struct(
        ("ConsumedCapacity", _CONSUMED_LIST), ("Responses", ListOf(struct(("Item", ATTRIBUTE_MAP)))),
    ),
    "TransactWriteItems": struct(
        ("ConsumedCapacity", _CONSUMED_LIST), ("ItemCollectionMetrics", MapOf(ListOf(_COLLECTION_METRICS))),
    ),
}
OPERATIONS: Final = frozenset(OUTPUTS)

_THROTTLING_REASONS: Final = ListOf(struct(*raw("reason", "resource")))
_MESSAGE_ONLY: Final = struct(*raw("message"))
# Every error shape of the service, by error code: botocore adds an error's modeled members to the
# response whatever the operation (``Endpoint._add_modeled_error_fields``).
ERRORS: Final[dict[str, Struct]] = {
    **{code: _MESSAGE_ONLY for code in (
        "BackupInUseException", "BackupNotFoundException", "ContinuousBackupsUnavailableException",
        "DuplicateItemException", "ExportConflictException", "ExportNotFoundException",
        "GlobalTableAlreadyExistsException", "GlobalTableNotFoundException", "ImportConflictException",
        "ImportNotFoundException", "IndexNotFoundException", "InternalServerError",
        "InvalidExportTimeException", "InvalidRestoreTimeException",
        "ItemCollectionSizeLimitExceededException",
        "LimitExceededException", "PointInTimeRecoveryUnavailableException", "PolicyNotFoundException",
        "ReplicaAlreadyExistsException", "ReplicaNotFoundException", "ReplicatedWriteConflictException",
        "ResourceInUseException", "ResourceNotFoundException", "TableAlreadyExistsException",
        "TableInUseException", "TableNotFoundException", "TransactionConflictException",
    )},
    "ConditionalCheckFailedException": struct(*raw("message"), ("Item", ATTRIBUTE_MAP)),
    "IdempotentParameterMismatchException": struct(*raw("Message")),
    "ProvisionedThroughputExceededException": struct(
        *raw("message"), ("ThrottlingReasons", _THROTTLING_REASONS),
    ),
    "RequestLimitExceeded": struct(*raw("message"), ("ThrottlingReasons", _THROTTLING_REASONS)),
    "ThrottlingException": struct(*raw("message"), ("throttlingReasons", _THROTTLING_REASONS)),
    "TransactionCanceledException": struct(
        *raw("Message"),
        ("CancellationReasons", ListOf(struct(("Item", ATTRIBUTE_MAP), *raw("Code", "Message")))),
    ),
    "TransactionInProgressException": struct(*raw("Message")),
}

# Each operation's modeled errors (botocore's 429 rule: a 429 is throttling unless its code is one
# of these) and the subset the model marks retryable (none of them as throttling).
_READ_ERRORS: Final = ("ProvisionedThroughputExceededException", "ResourceNotFoundException",
                       "RequestLimitExceeded", "InternalServerError", "ThrottlingException")
_WRITE_ERRORS: Final = (*_READ_ERRORS, "ConditionalCheckFailedException",
                        "ItemCollectionSizeLimitExceededException", "TransactionConflictException",
                        "ReplicatedWriteConflictException")
OPERATION_ERRORS: Final[dict[str, frozenset[str]]] = {
    "GetItem": frozenset(_READ_ERRORS),
    "Query": frozenset(_READ_ERRORS),
    "Scan": frozenset(_READ_ERRORS),
    "BatchGetItem": frozenset(_READ_ERRORS),
    "PutItem": frozenset(_WRITE_ERRORS),
    "UpdateItem": frozenset(_WRITE_ERRORS),
    "DeleteItem": frozenset(_WRITE_ERRORS),
    "BatchWriteItem": frozenset((*_READ_ERRORS, "ItemCollectionSizeLimitExceededException",
                                 "ReplicatedWriteConflictException")),
    "TransactWriteItems": frozenset((
        *_READ_ERRORS, "TransactionCanceledException", "TransactionInProgressException",
        "IdempotentParameterMismatchException",
    )),
    "TransactGetItems": frozenset((*_READ_ERRORS, "TransactionCanceledException")),
}
RETRYABLE_ERRORS: Final = frozenset({"ReplicatedWriteConflictException"})  # modeled retryable, not throttling

# Where attribute values sit in each request: the members that hold them (every other member is
# sent as given). Only these are walked, and only when a request holds binary values.
_CONDITION: Final = struct(("AttributeValueList", ListOf(AV)))
_EXPECTED: Final = MapOf(struct(("Value", AV), ("AttributeValueList", ListOf(AV))))
_VALUES: Final = ("ExpressionAttributeValues", ATTRIBUTE_MAP)
_KEY: Final = ("Key", ATTRIBUTE_MAP)
INPUT_VALUES: Final[dict[str, Struct]] = {
    "GetItem": struct(_KEY),
    "PutItem": struct(("Item", ATTRIBUTE_MAP), ("Expected", _EXPECTED), _VALUES),
    "UpdateItem": struct(
        _KEY, ("AttributeUpdates", MapOf(struct(("Value", AV)))), ("Expected", _EXPECTED), _VALUES,
    ),
    "DeleteItem": struct(_KEY, ("Expected", _EXPECTED), _VALUES),
    "Query": struct(("KeyConditions", MapOf(_CONDITION)), ("QueryFilter", MapOf(_CONDITION)),
                    ("ExclusiveStartKey", ATTRIBUTE_MAP), _VALUES),
    "Scan": struct(("ScanFilter", MapOf(_CONDITION)), ("ExclusiveStartKey", ATTRIBUTE_MAP), _VALUES),
    "BatchGetItem": struct(("RequestItems", MapOf(struct(("Keys", ListOf(ATTRIBUTE_MAP)))))),
    "BatchWriteItem": struct(("RequestItems", MapOf(ListOf(_WRITE_REQUEST)))),
    "TransactGetItems": struct(("TransactItems", ListOf(struct(("Get", struct(_KEY)))))),
    "TransactWriteItems": struct(("TransactItems", ListOf(struct(
        ("ConditionCheck", struct(_KEY, _VALUES)), ("Put", struct(("Item", ATTRIBUTE_MAP), _VALUES)),
        ("Delete", struct(_KEY, _VALUES)), ("Update", struct(_KEY, _VALUES)),
    )))),
}

# Each operation's parameter names (a request with another is refused before it is sent).
INPUT_MEMBERS: Final[dict[str, frozenset[str]]] = {
    "GetItem": frozenset({"TableName", "Key", "AttributesToGet", "ConsistentRead", "ReturnConsumedCapacity",
                          "ProjectionExpression", "ExpressionAttributeNames"}),
    "PutItem": frozenset({"TableName", "Item", "Expected", "ReturnValues", "ReturnConsumedCapacity",
                          "ReturnItemCollectionMetrics", "ConditionalOperator", "ConditionExpression",
                          "ExpressionAttributeNames", "ExpressionAttributeValues",
                          "ReturnValuesOnConditionCheckFailure"}),
    "UpdateItem": frozenset({"TableName", "Key", "AttributeUpdates", "Expected", "ConditionalOperator",
                             "ReturnValues", "ReturnConsumedCapacity", "ReturnItemCollectionMetrics",
                             "UpdateExpression", "ConditionExpression", "ExpressionAttributeNames",
                             "ExpressionAttributeValues", "ReturnValuesOnConditionCheckFailure"}),
    "DeleteItem": frozenset({"TableName", "Key", "Expected", "ConditionalOperator", "ReturnValues",
                             "ReturnConsumedCapacity", "ReturnItemCollectionMetrics", "ConditionExpression",
                             "ExpressionAttributeNames", "ExpressionAttributeValues",
                             "ReturnValuesOnConditionCheckFailure"}),
    "Query": frozenset({"TableName", "IndexName", "Select", "AttributesToGet", "Limit", "ConsistentRead",
                        "KeyConditions", "QueryFilter", "ConditionalOperator", "ScanIndexForward",
                        "ExclusiveStartKey", "ReturnConsumedCapacity", "ProjectionExpression",
                        "FilterExpression", "KeyConditionExpression", "ExpressionAttributeNames",
                        "ExpressionAttributeValues"}),
    "Scan": frozenset({"TableName", "IndexName", "AttributesToGet", "Limit", "Select", "ScanFilter",
                       "ConditionalOperator", "ExclusiveStartKey", "ReturnConsumedCapacity", "TotalSegments",
                       "Segment", "ProjectionExpression", "FilterExpression", "ExpressionAttributeNames",
                       "ExpressionAttributeValues", "ConsistentRead"}),
    "BatchGetItem": frozenset({"RequestItems", "ReturnConsumedCapacity"}),
    "BatchWriteItem": frozenset({"RequestItems", "ReturnConsumedCapacity", "ReturnItemCollectionMetrics"}),
    "TransactGetItems": frozenset({"TransactItems", "ReturnConsumedCapacity"}),
    "TransactWriteItems": frozenset({
        "TransactItems", "ReturnConsumedCapacity", "ReturnItemCollectionMetrics", "ClientRequestToken",
    }),
}
# Members botocore fills with a fresh UUID when the caller leaves them out (idempotency tokens).
IDEMPOTENCY_TOKENS: Final[dict[str, str]] = {"TransactWriteItems": "ClientRequestToken"}
