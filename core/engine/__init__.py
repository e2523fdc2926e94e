"""The engine: DynamoDB's data-plane requests built and decoded without I/O, sent by a thin transport.

- ``core.engine.signing``: SigV4, equal to botocore's ``SigV4Auth``, with the signing key cached.
- ``core.engine.requests``: ``build`` a request, ``decode`` an answer (the result or the
  ``ClientError`` botocore's client gives), from ``core.engine.shapes``' declared plans.
- ``core.engine.retries``: botocore's ``standard`` retry mode as decisions (one deliberate departure:
  a call that lost an answer is re-sent regardless of the retry quota).
- ``core.engine.calls``: what both transports do around a call (capacity asked, error raised, the
  observation), without I/O.
- ``core.engine.sync``: ``LeanClient``, the synchronous transport over one connection pool:
  ``core.engine.wire`` (HTTP/1.1 keep-alive on ``socket``/``ssl``, framing in ``core.engine.http1``)
  for direct connections, urllib3 behind a proxy (``core.engine.transport`` chooses, and maps
  either one's failures to botocore's exceptions).
- ``core.engine.aio``: ``AsyncLeanClient``, the asyncio transport over one connection pool of the
  engine's own (``core.engine.aiowire``: HTTP/1.1 keep-alive on asyncio, the framing shared with
  ``core.engine.wire``); imported on demand.
- ``observers``: callables that receive one ``Observation`` per call (``core.engine.observe``).

Control-plane calls (the migrations) stay on botocore's client (``core.client``).
"""

from __future__ import annotations

from core.engine.observe import Observation, Observer, observers

__all__ = ["Observation", "Observer", "observers"]
