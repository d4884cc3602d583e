"""The original study's own SVCCA distance matrix (../shared/reference/): 561
networks, BPTT and GA at N = 1 ... 6, read and split into its blocks."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rnn.errors import UserError

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
# the blocks of rows in order (name: rule and N), as its README lists them
BLOCKS = (("BPTT1", 24), ("GA1", 25), ("BPTT2", 24), ("GA2", 24), ("BPTT3", 63), ("GA3", 63),
          ("BPTT4", 60), ("GA4", 61), ("BPTT5", 59), ("GA5", 60), ("BPTT6", 49), ("GA6", 49))


def available(folder: Path = REFERENCE) -> bool:
    return (folder / "distances.npy").is_file() and (folder / "distance_labels.npy").is_file()


def load_reference(folder: Path = REFERENCE) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The distances (float64, diagonal 0, exactly symmetric) and the row
    indices of each block.  A file that is missing or not the expected 561
    rows in the expected blocks is a UserError."""
    try:
        D = np.load(folder / "distances.npy").astype(np.float64)
        labels = np.load(folder / "distance_labels.npy", allow_pickle=True).item()
    except (OSError, ValueError, AttributeError) as e:
        raise UserError(f"cannot read the reference matrix in {folder}: {e}") from None
    n = sum(size for _, size in BLOCKS)
    if D.shape != (n, n) or not np.all(np.isfinite(D)) or \
            not all(name in str(labels) for name, _ in BLOCKS):
        raise UserError(f"the reference matrix in {folder} is not the expected {n} networks in "
                        f"the blocks of its README")
    np.fill_diagonal(D, 0.0)
    D = (D + D.T) / 2            # symmetric to rounding already; make it exact
    start, edges = 0, {}
    for name, size in BLOCKS:
        edges[name] = np.arange(start, start + size)
        start += size
    return D, edges


def rule_block(N: int, folder: Path = REFERENCE) -> tuple[np.ndarray, np.ndarray]:
    """BPTT against GA at N: the sub-matrix and its group index (0 BPTT, 1 GA)."""
    D, edges = load_reference(folder)
    idx = np.concatenate([edges[f"BPTT{N}"], edges[f"GA{N}"]])
    g = np.array([0] * len(edges[f"BPTT{N}"]) + [1] * len(edges[f"GA{N}"]))
    return D[np.ix_(idx, idx)], g
