"""The repositories, awaited: ``from repositories.asyncio import orders``, then
``page = await orders.get_user_orders(user_id)``.

Each module here mirrors the module of ``repositories`` of the same name, function for function:
the same names, parameters, return types (``Page[T]`` included), errors and rules. A function that
sends requests is the synchronous function itself, run by ``core.engine.bridge`` with its calls
awaited on the running loop (``core.engine.aio.AsyncLeanClient``, one pool per loop), so every rule,
plan and access pattern is written once. Functions that send nothing (``transfer_id_for_key``,
``decode_stream_record``, the cache's settings) are the synchronous ones, re-exported.

A task cancelled while a write is in flight raises its ``asyncio.CancelledError``; when the request
may have reached DynamoDB, ``core.engine.bridge.outcome_of(exc)`` (also the error's ``__cause__``)
is the ``WriteOutcomeUnknown`` naming the keys, as for a lost answer; ``await unknown.aresolve()``
tells what happened. (``await task`` gives that error; ``asyncio.gather(..., return_exceptions=True)``
returns a new ``CancelledError`` for a cancelled task, without it.)

``await aclose()`` closes the running loop's connection pools (at the end of an app's lifespan, or
of a test).
"""

from __future__ import annotations

from core.client import aclose_model_clients
from core.engine.bridge import outcome_of

__all__ = ["aclose", "outcome_of"]


async def aclose() -> None:
    """Close the connection pools the async API opened on the running loop."""
    await aclose_model_clients()
