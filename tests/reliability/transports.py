"""The fault phases (1: faults, 4: attacks) once per way of calling the data layer.

- ``lean``: the synchronous API on the default transport (``core.engine.sync.LeanClient``);
- ``botocore``: the synchronous API on ``DATALAYER_TRANSPORT=botocore``
  (``core.client.BotocoreTransport``, a plain botocore client);
- ``async``: the async API (``repositories.asyncio``, the entities' ``asave()``/``aupdate()``/
  ``adelete()``, ``models.atransaction()``) awaited on an event loop, its calls on the loop's
  ``core.engine.aio.AsyncLeanClient`` (the ``LeanClient``'s twin, which shares its hooks, so the same
  faults reach it); phase 1 adds the ``cancel`` fault there (the task cancelled mid-write).

Each runs on tables of its own (``fresh_table``), so several can run side by side: ``run`` is
what the runner hands to each spawned process (``--jobs``); settings come from the environment it
is given. Most of a fault phase's time is botocore-style backoff, so they overlap well.
"""

from __future__ import annotations

import os
import time

from core.config import reload_settings
from tests.reliability.report import PhaseResult
from tests.reliability.table import drop_tables

# name -> (DATALAYER_TRANSPORT, API)
APIS: dict[str, tuple[str, str]] = {
    "lean": ("lean", "sync"),
    "botocore": ("botocore", "sync"),
    "async": ("lean", "async"),
}
PHASES = ("1", "4")  # the phases run once per transport/API


def run(
    name: str, phases: list[str], seed: int, rounds: int, random_actions: int, environment: dict[str, str]
) -> list[PhaseResult]:
    """Phases ``phases`` (of ``PHASES``) through ``name`` (of ``APIS``), in this process."""
    transport, api = APIS[name]
    os.environ.update(environment)
    os.environ["DATALAYER_TRANSPORT"] = transport
    reload_settings()
    results: list[PhaseResult] = []
    if "1" in phases:
        from tests.reliability import faulted

        print(f"reliability: phase 1 [{name}] ...", flush=True)
        try:
            found = faulted.run(seed, rounds, api=api, label=f"1 faults [{name}]")
        finally:
            drop_tables()
        print(f"reliability: phase 1 [{name}] done in {found.seconds:.0f}s", flush=True)
        results.append(found)
    if "4" in phases:
        from tests.reliability import attacks

        print(f"reliability: phase 4 [{name}] ...", flush=True)
        started = time.monotonic()
        try:
            results.extend(attacks.run(seed, random_actions, api=api, suffix=f" [{name}]"))
        finally:
            drop_tables()
        print(f"reliability: phase 4 [{name}] done in {time.monotonic() - started:.0f}s", flush=True)
    return results
