"""repositories.cache: a load that raced with a write is returned but never cached.

``read_through`` notes the invalidation generation before it loads; a write that invalidates the
key while the load runs (here: the loader itself, standing in for a concurrent writer) means the
loaded value may be older than the table, so caching it would serve a stale copy for a whole TTL.
Every write counts, not only the first; and a module just imported reads its TTL from the
environment.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Iterator

import pytest

from repositories import cache

KEY = ("PRODUCT", "p-1")


@pytest.fixture
def cache_on() -> Iterator[None]:
    """The cache on, with a TTL far longer than the test; reset afterwards."""
    cache.configure(ttl_seconds=3600)
    yield
    cache.reset()


def loader(
    values: list[str], on_load: Callable[[], None] = lambda: None
) -> tuple[Callable[[], str], list[int]]:
    """A loader returning ``values`` in turn (calling ``on_load`` first), and the list of its calls."""
    calls: list[int] = []

    def load() -> str:
        calls.append(len(calls))
        on_load()
        return values[len(calls) - 1]

    return load, calls


def test_a_load_that_races_with_an_invalidation_is_not_cached(cache_on: None) -> None:
    racing, racing_calls = loader(["stale"], on_load=lambda: cache.invalidate(KEY))
    assert cache.read_through(KEY, racing) == "stale"  # the caller still gets what it loaded
    fresh, fresh_calls = loader(["fresh", "never"])
    assert cache.read_through(KEY, fresh) == "fresh"  # loaded again: the stale value was not kept
    assert cache.read_through(KEY, fresh) == "fresh"  # and this one, loaded undisturbed, was
    assert racing_calls == [0] and fresh_calls == [0]


def test_a_load_that_races_with_a_write_to_another_key_is_not_cached_either(cache_on: None) -> None:
    # The generation is global (bounded memory), so any invalidation during the load discards it.
    racing, _ = loader(["maybe-stale"], on_load=lambda: cache.invalidate(("PRODUCT", "other")))
    cache.read_through(KEY, racing)
    fresh, calls = loader(["fresh"])
    assert cache.read_through(KEY, fresh) == "fresh" and calls == [0]


def test_a_load_that_races_with_clear_is_not_cached(cache_on: None) -> None:
    racing, _ = loader(["stale"], on_load=cache.clear)
    cache.read_through(KEY, racing)
    fresh, calls = loader(["fresh"])
    assert cache.read_through(KEY, fresh) == "fresh" and calls == [0]


def test_a_write_in_another_thread_during_the_load_keeps_the_loaded_value_out(cache_on: None) -> None:
    loading, written = threading.Event(), threading.Event()

    def writer() -> None:
        loading.wait(5)
        cache.invalidate(KEY)
        written.set()

    def slow_load() -> str:
        loading.set()
        assert written.wait(5)
        return "read-before-the-write"

    thread = threading.Thread(target=writer)
    thread.start()
    assert cache.read_through(KEY, slow_load) == "read-before-the-write"
    thread.join(5)
    fresh, calls = loader(["written"])
    assert cache.read_through(KEY, fresh) == "written" and calls == [0]


def test_an_undisturbed_load_is_cached_until_invalidated(cache_on: None) -> None:
    load, calls = loader(["first", "second"])
    assert cache.read_through(KEY, load) == "first"
    assert cache.read_through(KEY, load) == "first" and calls == [0]
    cache.invalidate(KEY)
    assert cache.read_through(KEY, load) == "second" and calls == [0, 1]


@pytest.mark.parametrize("write", [lambda: cache.invalidate(KEY), cache.clear], ids=["invalidate", "clear"])
def test_every_write_during_a_load_counts_not_only_the_first(
    cache_on: None, write: Callable[[], None]
) -> None:
    for round_ in range(3):
        racing, _ = loader([f"stale-{round_}"], on_load=write)
        cache.read_through(KEY, racing)
        fresh, calls = loader([f"fresh-{round_}", "never"])
        assert cache.read_through(KEY, fresh) == f"fresh-{round_}" and calls == [0]
        cache.invalidate(KEY)


def test_a_freshly_imported_cache_turns_itself_on_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The autouse fixture resets the cache before every test; only a fresh copy of the module (not
    # the one the layer uses) shows the state it starts in, as a new process would.
    spec = importlib.util.spec_from_file_location("fresh_cache", cache.__file__)
    assert spec is not None and spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    monkeypatch.setenv("DATALAYER_CACHE_TTL_SECONDS", "60")
    load, calls = loader(["loaded", "again"])
    assert fresh.read_through(KEY, load) == "loaded" and fresh.read_through(KEY, load) == "loaded"
    assert calls == [0]
