"""Many files under ``torchrun``: each process's share, and the wait for the others.

torchrun stops every process as soon as one of them exits with an error. A process whose
share held a bad file therefore waits, before it exits, until every process has finished
its share: otherwise a good file would be cut off half-made, and the same command run again
would cut it off again.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from ..interrupts import settle

__all__ = ["rank_and_world", "shard", "wait_for_other_ranks"]

_FINISHED = "refdeblur-video/finished"
_LEFT = "refdeblur-video/left"
_POLL_S = 0.2  # short sleeps between polls: Ctrl-C still stops a process that waits


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0, 1 without torchrun)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def shard(files: list[Path]) -> list[Path]:
    """This process's share of ``files`` under torchrun (every WORLD_SIZE-th), else all."""
    rank, world = rank_and_world()
    return files[rank::world]


def wait_for_other_ranks() -> None:
    """Under torchrun, return once every process has finished its share; then signals are
    ignored, so that torchrun stopping this process as it exits cuts nothing off. Without
    torchrun (no WORLD_SIZE > 1 with MASTER_ADDR and MASTER_PORT) return at once."""
    rank, world = rank_and_world()
    if world <= 1 or not (os.environ.get("MASTER_ADDR") and os.environ.get("MASTER_PORT")):
        return
    from torch.distributed import TCPStore

    # torchrun's agent hosts the store where it says so; else rank 0 does, as env:// has it
    agent_hosts = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
    hosting = rank == 0 and not agent_hosts
    store = TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                     is_master=hosting, timeout=timedelta(minutes=5), wait_for_workers=False,
                     multi_tenant=not agent_hosts)
    store.add(_FINISHED, 1)
    while store.add(_FINISHED, 0) < world:
        time.sleep(_POLL_S)
    store.add(_LEFT, 1)
    while hosting and store.add(_LEFT, 0) < world:  # the others still read the count
        time.sleep(_POLL_S)
    settle()
