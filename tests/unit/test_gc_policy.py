"""The receivers' processes run with the collector settings of ``shared.bootstrap.gc_policy``:
start-up frozen out of collections and a young generation of 20,000 allocations."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator

import pytest

from shared.bootstrap import receiver
from shared.bootstrap.gc_policy import YOUNG_GENERATION, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """Whatever a test does to the collector, the test process gets its settings back."""
    threshold = gc.get_threshold()
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_tune_gc_freezes_start_up_and_widens_the_young_generation() -> None:
    _, middle, old = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    tune_gc()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_GENERATION, middle, old)


@pytest.mark.usefixtures("restored_gc")
@pytest.mark.parametrize("main", [receiver.qbo_main, receiver.released_main])
def test_each_receiver_process_tunes_the_collector_before_serving(
    main: Callable[[], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int, int]] = []

    def serve(*_: object) -> int:
        seen.append(gc.get_threshold())
        return 0

    monkeypatch.setattr(receiver, "serve_from_env", serve)
    assert main() == 0
    assert [threshold[0] for threshold in seen] == [YOUNG_GENERATION]
    assert gc.get_freeze_count() > 0
