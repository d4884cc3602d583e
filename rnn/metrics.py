"""The representational similarity metrics by name, and their labels (no torch: grid
files and help texts are checked against this list before any work starts)."""
from __future__ import annotations

METRICS = ("svcca", "pwcca", "cka", "procrustes", "dsa")
LABEL = {"svcca": "SVCCA", "pwcca": "PWCCA", "cka": "1 − CKA", "procrustes": "Procrustes",
         "dsa": "DSA"}
TOPOLOGY = "topology"        # the attractor input topology, compared beside them


def label(metric: str, alpha: float = 1.0, dsa_score: str | None = None) -> str:
    """'SVCCA', 'shape (α=0.5)' (Procrustes at another α), 'DSA (wasserstein)', ..."""
    if metric == "procrustes" and alpha != 1.0:
        return f"shape (α={alpha:g})"
    if metric == "dsa" and dsa_score is not None:
        return f"DSA ({dsa_score})"
    return LABEL.get(metric, metric)
