"""--auto-compaction-mode/-retention: the leader proposes Compact on a schedule (etcd's v3compactor).

periodic: keep `retention` seconds of history — revisions are sampled every tenth of the retention
and the one sampled `retention` ago becomes the compaction point. revision: every 5 minutes, compact
to current revision minus `retention`.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable

from petcd.api import errors
from petcd.log import get_logger

log = get_logger("compactor")

REVISION_MODE_INTERVAL = 300.0  # etcd's revision compactor checks every 5 minutes


class AutoCompactor:
    def __init__(
        self,
        mode: str,
        retention: float,
        current_revision: Callable[[], int],
        is_leader: Callable[[], bool],
        compact: Callable[[int], Awaitable[None]],
    ) -> None:
        self.mode = mode
        self.retention = retention
        self._current = current_revision
        self._is_leader = is_leader
        self._compact = compact
        self._last = 0
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def next_target(self, now: float) -> int:
        """The revision to compact to now, or 0 (pure given the samples; `sample` feeds them)."""
        if self.mode == "revision":
            target = self._current() - int(self.retention)
        else:
            target = 0
            while self._samples and now - self._samples[0][0] >= self.retention:
                target = self._samples.popleft()[1]
        return target if target > self._last else 0

    def sample(self, now: float) -> None:
        self._samples.append((now, self._current()))

    async def run(self) -> None:
        interval = REVISION_MODE_INTERVAL if self.mode == "revision" else max(self.retention / 10, 0.1)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            if self.mode != "revision":
                self.sample(now)
            target = self.next_target(now)
            if not target or not self._is_leader():
                continue
            try:
                await self._compact(target)
                self._last = target
                log.info("completed auto revision compaction", revision=target, mode=self.mode)
            except errors.EtcdError as exc:
                if exc == errors.COMPACTED:
                    self._last = target
                else:
                    log.warn("failed auto compaction", revision=target, error=exc.message)
