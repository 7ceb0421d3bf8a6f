"""Many files under ``torchrun``: each process's share, and the wait for the others.

torchrun stops every process as soon as one of them exits with an error. A process whose
share held a bad file therefore waits, before it exits, until every process has finished
its share: otherwise a good file would be cut off half-made, and the same command run again
would cut it off again.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..interrupts import settle

__all__ = ["RankBarrier", "rank_and_world", "shard"]

log = logging.getLogger("refdeblur_video")

_POLL_S = 0.2  # short sleeps between polls: a signal still reaches a process that waits


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0, 1 without torchrun)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def shard(files: list[Path]) -> list[Path]:
    """This process's share of ``files`` under torchrun (every WORLD_SIZE-th), else all."""
    rank, world = rank_and_world()
    return files[rank::world]


class RankBarrier:
    """Made before the files are worked on (rank 0 may have to host the store, and every
    process connects while all are starting); :meth:`wait` once this process's share is
    done. Without torchrun (no WORLD_SIZE > 1 with MASTER_ADDR and MASTER_PORT) it does
    nothing."""

    def __init__(self) -> None:
        self.rank, self.world = rank_and_world()
        self._store: Any = None
        if self.world <= 1 or not (os.environ.get("MASTER_ADDR")
                                   and os.environ.get("MASTER_PORT")):
            return
        from torch.distributed import PrefixStore, TCPStore

        # torchrun's agent hosts the store where it says so; else rank 0 does, as env:// has
        agent_hosts = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
        self._hosting = self.rank == 0 and not agent_hosts
        try:
            store = TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                             self.world, is_master=self._hosting,
                             timeout=timedelta(minutes=5), wait_for_workers=False,
                             multi_tenant=not agent_hosts)
        except Exception as exc:  # noqa: BLE001 - the files matter more than the wait
            log.debug("no store to wait for the other processes: %s", exc)
            return
        # a restarted round (--max-restarts) counts afresh
        prefix = (f"refdeblur-video/{os.environ.get('TORCHELASTIC_RUN_ID', '')}/"
                  f"{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}")
        self._store = PrefixStore(prefix, store)

    def wait(self) -> None:
        """Return once every process has finished its share (then signals are ignored, as
        torchrun may stop this process as it exits); a signal meanwhile ends the wait
        quietly: this process's files are all done."""
        if self._store is None:
            return
        try:
            self._store.add("finished", 1)
            self._until("finished", self.world)
            settle()
            self._store.add("left", 1)
            if self._hosting:  # the others still read the count from this process
                self._until("left", self.world)
        except KeyboardInterrupt:
            pass
        except Exception as exc:  # noqa: BLE001 - e.g. the store's host has gone
            log.debug("stopped waiting for the other processes: %s", exc)
        settle()

    def _until(self, key: str, count: int) -> None:
        while self._store.add(key, 0) < count:
            time.sleep(_POLL_S)
