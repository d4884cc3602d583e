"""Counter-based random streams, one per network, identical on every device.

Why not ``torch.Generator``?  Three things this tool needs at once:

* a network trained inside a population must see exactly the numbers it would
  see trained alone (its own seed, whatever its neighbours do);
* the same seed must give the same numbers on the CPU and on a GPU, so that a
  population trained on a GPU can be checked against a CPU run;
* drawing the noise of 64 networks must be one batched operation, not 64
  generator calls.

A :class:`Streams` object holds one 64-bit seed per network and a call counter.
Each call hashes (seed, stream id, counter) into two 32-bit keys per network,
then hashes every element index with those keys (two rounds of a
xorshift-multiply mixer, a bijection on 32-bit words).  The result depends only
on (seed, stream, counter, element index), never on the device or on how many
networks share the call.  Uniforms have 24 random bits; normals come from the
Box-Muller transform (elements 2i, 2i+1 form a pair).  Large draws are
generated in cache-sized chunks.  ``tests/test_rng.py`` checks moments,
independence of streams and population invariance.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch

# Named streams: one seed drives several independent sequences.
WEIGHTS = 1      # initial weights (and GA initial population)
TRAIN = 2        # training batches (inputs, noise, initial states)
VALID = 3        # the validation set
MUTATE = 4       # GA parent choice and mutations
TEACHER = 5      # full-FORCE target-generating network
PERTURB = 6      # Hebbian exploratory perturbations
PROBE = 7        # analyses that need noisy trials (psychometric curves)
RECORD = 8       # activity recordings for tensor component analysis
REDRAW = 9       # validation initial states redrawn at every check (original protocol)

_M1 = 0x21F0AAAD
_M2 = 0x735A2D97


def _mix_(h: torch.Tensor) -> torch.Tensor:
    """In-place 32-bit mixer on an int32 tensor (bits read as uint32)."""
    h ^= (h >> 16) & 0xFFFF
    h *= _M1
    h ^= (h >> 15) & 0x1FFFF
    h *= _M2
    h ^= (h >> 15) & 0x1FFFF
    return h


# On a CPU, large draws hash their element indices in one fused pass compiled by
# numba (the same bits as _mix_: the tests compare the two paths bit for bit);
# the torch path does a dozen elementwise passes over the array, which made the
# hash most of the time of a large draw (bench/bench_floor.py; docs/speed.md).
FUSED_MIN = 1 << 16        # elements per call below which the torch path is used
PLAIN_ENV = "RNN_PLAIN_RNG"  # set to 1: always the torch path (checks, debugging)
_fused = None              # the compiled kernel, False once it proved unavailable


def _fused_kernel():
    """The numba hash kernel, compiled (and cached on disk) on first use; None
    where numba cannot be used (said once, on stderr)."""
    global _fused
    if _fused is None:
        try:
            _fused = _compile_fused()
        except Exception as e:                 # noqa: BLE001 (any failure: plain path)
            import sys
            print(f"note: the fused random-number kernel is unavailable ({type(e).__name__}: "
                  f"{e}); using the plain torch path (the same numbers, slower)",
                  file=sys.stderr)
            _fused = False
    return _fused or None


def _compile_fused():
    import numba
    import numpy as np

    @numba.njit(cache=True, nogil=True)
    def hash_indices(c0, k1, k2, out):          # out [P, m] uint32
        # numba widens 32-bit integer arithmetic to 64 bits: mask every product
        P, m = out.shape
        mask = np.uint64(0xFFFFFFFF)
        m1, m2 = np.uint64(_M1), np.uint64(_M2)
        s15, s16 = np.uint64(15), np.uint64(16)
        for p in range(P):
            a = np.uint64(k1[p])
            b = np.uint64(k2[p])
            for i in range(m):
                h = np.uint64(c0 + i) ^ a
                h ^= h >> s16
                h = (h * m1) & mask
                h ^= h >> s15
                h = (h * m2) & mask
                h ^= h >> s15
                h ^= b
                h ^= h >> s16
                h = (h * m1) & mask
                h ^= h >> s15
                h = (h * m2) & mask
                h ^= h >> s15
                out[p, i] = np.uint32(h)
    probe = np.empty((1, 2), dtype=np.uint32)
    hash_indices(0, np.zeros(1, np.uint32), np.zeros(1, np.uint32), probe)   # compile now
    return hash_indices


def _mix_int(v: int) -> int:
    """The same mixer on a Python int (used for keys and in tests)."""
    v &= 0xFFFFFFFF
    v ^= v >> 16
    v = (v * _M1) & 0xFFFFFFFF
    v ^= v >> 15
    v = (v * _M2) & 0xFFFFFFFF
    v ^= v >> 15
    return v


def _to_int32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= (1 << 31) else v


class Streams:
    """Independent random streams for ``len(seeds)`` networks.

    ``normal(*shape)`` and ``uniform(*shape)`` return tensors of shape
    ``[P, *shape]``: row ``p`` depends only on ``seeds[p]``, the stream id and
    how many calls this object has answered before.
    """

    def __init__(self, seeds: Sequence[int] | int, stream: int, device: str | torch.device = "cpu",
                 counter: int = 0):
        if isinstance(seeds, int):
            seeds = [seeds]
        self.seeds = [int(s) for s in seeds]
        for s in self.seeds:
            if s < 0 or s >= 2**63:
                raise ValueError(f"seed {s} is outside [0, 2**63)")
        self.stream = int(stream)
        self.device = torch.device(device)
        self.counter = int(counter)
        # Per-network base keys, computed once (P small ints).
        base1, base2 = [], []
        for s in self.seeds:
            lo, hi = s & 0xFFFFFFFF, s >> 32
            a = _mix_int(lo ^ _mix_int(self.stream * 0x9E3779B9 + 0x632BE5AB))
            b = _mix_int(hi ^ _mix_int(a + 0x85EBCA77))
            base1.append(a)
            base2.append(_mix_int(b ^ 0xC2B2AE3D))
        self._base1 = base1
        self._base2 = base2

    @property
    def n(self) -> int:
        return len(self.seeds)

    def subset(self, idx: Iterable[int]) -> "Streams":
        """Streams of the networks ``idx``, sharing this object's counter position."""
        idx = [int(i) for i in idx]
        return Streams([self.seeds[i] for i in idx], self.stream, self.device, self.counter)

    def _keys(self) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.counter
        self.counter += 1
        ck = _mix_int(c * 0x27D4EB2F + 0x165667B1)
        k1 = [_to_int32(_mix_int(a ^ ck)) for a in self._base1]
        k2 = [_to_int32(_mix_int(b + ck)) for b in self._base2]
        dev = self.device
        return (torch.tensor(k1, dtype=torch.int32, device=dev),
                torch.tensor(k2, dtype=torch.int32, device=dev))

    def _chunk(self) -> int:
        """Elements per network per pass: cache-sized on a CPU (the mixer is a
        dozen elementwise passes, memory-bound on large arrays), large on a GPU."""
        if self.device.type == "cpu":
            return max(1 << 12, (1 << 19) // max(1, self.n))
        return 1 << 24

    def _fill(self, count: int, transform, out: torch.Tensor) -> torch.Tensor:
        """out[:, i] = transform(bits of elements i) for i < count, chunk by chunk.
        ``transform`` maps int32 bits [P, m] (m even) to float values [P, m]."""
        if count >= 2**31:
            raise ValueError("too many random numbers in one call")
        k1, k2 = self._keys()
        step = self._chunk()
        step += step % 2
        import os
        kernel = (_fused_kernel() if self.device.type == "cpu" and count >= FUSED_MIN
                  and not os.environ.get(PLAIN_ENV) else None)
        if kernel is not None:
            import numpy as np
            ka, kb = k1.numpy().view(np.uint32), k2.numpy().view(np.uint32)
            buf = np.empty((self.n, min(step, count + count % 2)), dtype=np.uint32)
        for c0 in range(0, count, step):
            c1 = min(count, c0 + step)
            m = (c1 - c0) + (c1 - c0) % 2
            if kernel is not None:
                kernel(c0, ka, kb, buf[:, :m])
                h = torch.from_numpy(buf[:, :m].view(np.int32))
            else:
                h = torch.arange(c0, c0 + m, dtype=torch.int32, device=self.device).unsqueeze(0)
                h = h ^ k1[:, None]
                _mix_(h)
                h ^= k2[:, None]
                _mix_(h)
            out[:, c0:c1] = transform(h)[:, :c1 - c0]
        return out

    @staticmethod
    def _unit(h: torch.Tensor) -> torch.Tensor:
        # 24 random bits -> float32 in the open interval (0, 1)
        return ((h >> 8) & 0xFFFFFF).to(torch.float32).add_(0.5).mul_(1.0 / 2**24)

    @staticmethod
    def _box_muller(h: torch.Tensor) -> torch.Tensor:
        # elements 2i and 2i+1 make one pair of normals
        u = Streams._unit(h).view(h.shape[0], -1, 2)
        r = u[..., 0].log_().mul_(-2.0).sqrt_()
        theta = u[..., 1].mul_(2.0 * math.pi)
        return torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=-1).view(
            h.shape[0], -1)

    def uniform(self, *shape: int) -> torch.Tensor:
        """U(0, 1) samples, shape ``[P, *shape]``, float32."""
        count = math.prod(shape)
        out = torch.empty(self.n, count, device=self.device)
        return self._fill(count, self._unit, out).view(self.n, *shape)

    def normal(self, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """N(0, 1) samples, shape ``[P, *shape]``."""
        count = math.prod(shape)
        out = torch.empty(self.n, count, device=self.device)
        return self._fill(count, self._box_muller, out).to(dtype).view(self.n, *shape)

    def signs(self, *shape: int) -> torch.Tensor:
        """Independent fair ±1 values, shape ``[P, *shape]``, float32."""
        return torch.where(self.uniform(*shape) < 0.5, -1.0, 1.0)

    def integers(self, high: int, *shape: int) -> torch.Tensor:
        """Uniform integers in [0, high), shape ``[P, *shape]``, int64."""
        return (self.uniform(*shape) * high).long().clamp_(max=high - 1)
