"""Per-account rate limits that hold across processes (two stores, one database)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from alerts.store import Store

T0 = datetime(2026, 7, 20, tzinfo=UTC)


def test_the_budget_is_shared_by_every_store_on_the_database(store_url: str) -> None:
    with Store(store_url) as a, Store(store_url) as b:
        got = [s.reserve_rate("wecom_bot:x", limit=3, window_s=60, now=T0) for s in (a, b, a)]
        assert got == [0.0, 0.0, 0.0]
        wait = b.reserve_rate("wecom_bot:x", limit=3, window_s=60, now=T0 + timedelta(seconds=10))
        assert 49 < wait <= 50  # the oldest call leaves the window at T0 + 60 s
        assert a.reserve_rate("wecom_bot:other", limit=3, window_s=60, now=T0) == 0.0
        later = T0 + timedelta(seconds=61)
        assert b.reserve_rate("wecom_bot:x", limit=3, window_s=60, now=later) == 0.0


def test_concurrent_processes_never_both_take_the_last_slot(store_url: str) -> None:
    stores = [Store(store_url) for _ in range(4)]
    taken: list[float] = []
    lock = threading.Lock()

    def worker(store: Store) -> None:
        for _ in range(10):
            wait = store.reserve_rate("dingtalk:y", limit=20, window_s=60, now=T0)
            with lock:
                taken.append(wait)

    threads = [threading.Thread(target=worker, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert sum(1 for w in taken if w == 0.0) == 20
    assert len(taken) == 40
