"""Where this training process sits among its peers: one process, or a rank of a DDP group."""

from __future__ import annotations

from dataclasses import dataclass

import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world: int = 1
    process_group: bool = False  # a torch.distributed group exists: wrap in DDP, even for one process

    @classmethod
    def from_process_group(cls) -> "DistributedContext":
        """The context of an initialised torch.distributed group (Ray Train sets one up)."""
        return cls(dist.get_rank(), dist.get_world_size(), process_group=True)

    @property
    def is_main(self) -> bool:
        """The one process that writes checkpoints, metrics and the model."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.process_group

    def gather(self, value: object) -> list:
        """Every process's ``value``, in rank order (a picklable object)."""
        if not self.is_distributed:
            return [value]
        values: list = [None] * self.world
        dist.all_gather_object(values, value)
        return values

    def sum(self, value: float) -> float:
        # Through gather, not all_reduce: NCCL would need the number on the GPU.
        return float(sum(self.gather(value)))

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()


SINGLE_PROCESS = DistributedContext()
