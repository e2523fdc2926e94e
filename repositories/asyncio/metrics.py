"""``repositories.metrics``, awaited (see ``repositories.asyncio``): ``get_metrics`` and
``get_hourly_aggregates`` fan out as tasks of the running loop (``asyncio.gather``, bounded)."""

from __future__ import annotations

from core.engine.bridge import awaitable
from repositories import metrics as _sync

__all__ = ["get_hourly_aggregates", "get_metrics", "record_metric"]

record_metric = awaitable(_sync.record_metric)
get_metrics = awaitable(_sync.get_metrics)
get_hourly_aggregates = awaitable(_sync.get_hourly_aggregates)
