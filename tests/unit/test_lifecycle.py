import asyncio

import pytest

from entrypoints.lifecycle import Lifecycle


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def opener(self, name: str, fail: bool = False):
        async def open_() -> str:
            await asyncio.sleep(0)
            if fail:
                raise RuntimeError(f"{name} failed")
            self.events.append(f"open {name}")
            return name

        return open_

    def closer(self, value: str) -> None:
        self.events.append(f"close {value}")


async def test_resources_open_in_order_and_close_in_reverse() -> None:
    rec = Recorder()
    lifecycle = Lifecycle()
    a = lifecycle.add("a", rec.opener("a"), rec.closer)
    lifecycle.add("b", rec.opener("b"), rec.closer)
    await lifecycle.start()
    assert a.get() == "a"
    await lifecycle.close()
    assert rec.events == ["open a", "open b", "close b", "close a"]
    with pytest.raises(RuntimeError, match="not started"):
        a.get()


async def test_start_is_idempotent_under_concurrency() -> None:
    rec = Recorder()
    lifecycle = Lifecycle()
    lifecycle.add("a", rec.opener("a"), rec.closer)
    await asyncio.gather(lifecycle.start(), lifecycle.start(), lifecycle.start())
    assert rec.events == ["open a"]
    await lifecycle.close()
    await lifecycle.close()
    assert rec.events == ["open a", "close a"]


async def test_failure_half_way_closes_what_was_opened() -> None:
    rec = Recorder()
    lifecycle = Lifecycle()
    lifecycle.add("a", rec.opener("a"), rec.closer)
    lifecycle.add("b", rec.opener("b"), rec.closer)
    lifecycle.add("c", rec.opener("c", fail=True), rec.closer)
    with pytest.raises(RuntimeError, match="c failed"):
        await lifecycle.start()
    assert rec.events == ["open a", "open b", "close b", "close a"]
    assert not lifecycle.started


async def test_a_failing_close_does_not_keep_others_open() -> None:
    rec = Recorder()
    lifecycle = Lifecycle()

    def broken(_: str) -> None:
        raise OSError("boom")

    lifecycle.add("a", rec.opener("a"), rec.closer)
    lifecycle.add("b", rec.opener("b"), broken)
    await lifecycle.start()
    await lifecycle.close()
    assert rec.events == ["open a", "open b", "close a"]
