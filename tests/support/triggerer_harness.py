"""Drive event triggers the way Airflow 3.3's triggerer does, with a stand-in for the asset state store.

The real store is reached through the triggerer supervisor and the API server; this
one keeps the same ``aget``/``aset`` contract in a dict, so a "restart" is a new
trigger instance (rebuilt from ``serialize()``) over the same dict.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any


class InMemoryAssetStateStore:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        assert value is not None
        self.values[key] = value


def revive(trigger, store):
    """A new instance from ``serialize()``, as the triggerer builds it, with the asset's store injected."""
    import importlib

    classpath, kwargs = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    fresh = getattr(importlib.import_module(module), name)(**kwargs)
    fresh.asset_state_store = store
    return fresh


class TriggerLoop:
    """Runs ``async for event in trigger.run()`` in a task, as ``TriggerRunner.run_trigger`` does."""

    def __init__(self, trigger) -> None:
        self.trigger = trigger
        self.events: list[dict] = []
        self.task: asyncio.Task | None = None

    async def _consume(self) -> None:
        async for event in self.trigger.run():
            self.events.append(event.payload)

    def start(self) -> TriggerLoop:
        self.task = asyncio.ensure_future(self._consume())
        return self

    async def until(self, condition, timeout: float = 60.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.task.done():
                self.task.result()  # surface the trigger's error
                raise AssertionError(f"trigger loop ended before {what}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; events so far: {self.events}")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Cancel the loop, like a triggerer shutdown."""
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
