"""SimGAN's image-history buffer, kept on the device.

The discriminator sees half (``fraction``) of each fake batch from refined images of earlier
steps, so it does not forget old artefacts and the refiner cannot reintroduce them. Public
ports keep a Python list that must reach its size before it is used and, through an
off-by-one in the fill test, never does; here the buffer is a fixed-size ring of image slots
written with ``index_copy_`` and read with a device-side random index, with ``count`` and
``pos`` as device tensors: no host sync, no Python branch on its contents, and usable from
the first step (while it is empty the "history" half is the current fakes).
"""

from __future__ import annotations

import torch

__all__ = ["HistoryBuffer"]


class HistoryBuffer:
    """A ring of ``capacity`` images of ``shape`` (C, H, W) on ``device``."""

    def __init__(self, capacity: int, shape: tuple[int, int, int], *, device="cpu",
                 dtype: torch.dtype = torch.float32, fraction: float = 0.5,
                 memory_format: torch.memory_format = torch.contiguous_format):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"HistoryBuffer: capacity must be an int >= 1, got {capacity!r}")
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"HistoryBuffer: fraction must be in [0, 1], got {fraction!r}")
        self.capacity, self.fraction = capacity, float(fraction)
        self.images = torch.zeros(capacity, *shape, device=device, dtype=dtype).contiguous(
            memory_format=memory_format)
        self.count = torch.zeros((), dtype=torch.long, device=device)   # slots filled
        self.pos = torch.zeros((), dtype=torch.long, device=device)     # next slot written

    def n_history(self, batch: int) -> int:
        return min(int(round(batch * self.fraction)), batch)

    def mix(self, fakes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The discriminator's fake batch: the first B - k current fakes and k images drawn
        uniformly from the filled slots (the current fakes' last k while it is empty)."""
        b = fakes.shape[0]
        k = self.n_history(b)
        if k == 0:
            return fakes
        u = torch.rand(k, device=self.images.device, generator=generator)
        idx = (u * self.count.clamp(min=1)).long().clamp_(max=self.capacity - 1)
        past = self.images.index_select(0, idx).to(fakes.dtype)
        past = torch.where(self.count > 0, past, fakes[b - k:])
        return torch.cat([fakes[:b - k], past])

    @torch.no_grad()
    def push(self, fakes: torch.Tensor) -> None:
        """Write k = fraction * B of the new fakes into the oldest slots."""
        k = min(self.n_history(fakes.shape[0]), self.capacity)
        if k == 0:
            return
        idx = (self.pos + torch.arange(k, device=self.images.device)) % self.capacity
        self.images.index_copy_(0, idx, fakes[:k].detach().to(self.images.dtype))
        self.pos.copy_((self.pos + k) % self.capacity)
        self.count.copy_((self.count + k).clamp(max=self.capacity))

    def state_dict(self) -> dict:
        return {"images": self.images, "count": self.count, "pos": self.pos,
                "capacity": self.capacity, "fraction": self.fraction}

    def load_state_dict(self, state: dict) -> None:
        if state["images"].shape != self.images.shape:
            raise ValueError(f"HistoryBuffer: saved images {tuple(state['images'].shape)} do not fit "
                             f"this buffer {tuple(self.images.shape)}")
        self.images.copy_(state["images"])
        self.count.copy_(state["count"])
        self.pos.copy_(state["pos"])
        self.fraction = float(state.get("fraction", self.fraction))
