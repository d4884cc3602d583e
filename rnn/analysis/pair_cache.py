"""The cache of pairwise distances every metric keeps: one JSON file per
metric and analysis, keyed by the networks' weights hashes, so any groups
file (or grid, or paper run) listing the same networks reuses them.  A file
that is unreadable, or an entry that is not a valid distance of its metric,
is recomputed, never reused."""
from __future__ import annotations

import hashlib
import json
import math


class PairCache:
    """One metric's distances keyed by the two networks' weights hashes, for
    one analysis: any groups file listing the same networks reuses them.

    Stored as JSON: {"analysis": key, "networks": {hash: [directions, noise
    floor]}, "pairs": {"hashA hashB": [distance] or [distance, angular]}}
    (hashes sorted; the angular distance for SVCCA)."""

    def __init__(self, analysis: dict, path=None, load: bool = True):
        """``analysis``: the cache key (rnn.analysis.metrics.cache_key); ``path``: where
        the cache is saved; ``load=False`` starts empty (-reload)."""
        self.analysis = analysis
        self.path = path
        self.networks: dict[str, list] = {}
        self.pairs: dict[str, list] = {}
        self.dropped = 0                   # entries of the file that were not reused
        from rnn.io import is_regular_file
        if path is not None and load and is_regular_file(path):
            try:
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
                if isinstance(data, dict) and data.get("analysis") == self.analysis:
                    self._take(data.get("networks"), data.get("pairs"))
            except FileNotFoundError:
                pass                       # no cache yet
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                self.dropped = -1          # unreadable: start empty
            if self.dropped:
                import sys
                what = "could not be read" if self.dropped < 0 else \
                    f"has {self.dropped} entries that are not valid distances"
                print(f"note: cache {path} {what}; those distances are recomputed",
                      file=sys.stderr)

    def bounds(self) -> tuple[float, float]:
        """The values a distance of this analysis's metric can take (with
        rounding room), from the metric table."""
        from rnn.analysis.metrics import REGISTRY
        return REGISTRY[self.analysis.get("metric", "svcca")].bounds

    def _take(self, networks, pairs) -> None:
        """Keep the entries of a loaded file that hold valid values."""
        lo, hi = self.bounds()

        def number(x, low=-math.inf, high=math.inf):
            return isinstance(x, (int, float)) and not isinstance(x, bool) and \
                math.isfinite(x) and low <= x <= high

        if not isinstance(networks, dict) or not isinstance(pairs, dict):
            self.dropped = -1
            return
        for k, v in networks.items():
            if isinstance(v, list) and len(v) == 2 and number(v[0], 0) and number(v[1], lo):
                self.networks[k] = v
            else:
                self.dropped += 1
        for k, v in pairs.items():
            ok = isinstance(v, list) and 1 <= len(v) <= 2 and number(v[0], lo, hi) and \
                (len(v) == 1 or number(v[1], -1e-6, math.pi / 2 + 1e-6))
            if ok and isinstance(k, str) and len(k.split(" ")) == 2:
                self.pairs[k] = v
            else:
                self.dropped += 1

    @staticmethod
    def file_name(analysis: dict, prefix: str = "svcca_cache_") -> str:
        """``prefix`` + the first 10 hex digits of the key's SHA-256."""
        h = hashlib.sha256(json.dumps(analysis, sort_keys=True).encode()).hexdigest()
        return f"{prefix}{h[:10]}.json"

    @staticmethod
    def pair(a: str, b: str) -> str:
        return " ".join(sorted((a, b)))

    def missing(self, keys: list[str]) -> tuple[list[int], int]:
        """The networks (indices into ``keys``) this cache lacks or that have a
        pair missing from it, and the number of missing pairs."""
        n = len(keys)
        todo = {i for i in range(n) if keys[i] not in self.networks}
        pairs = 0
        for i in range(n):
            for j in range(i + 1, n):
                if keys[i] != keys[j] and self.pair(keys[i], keys[j]) not in self.pairs:
                    todo |= {i, j}
                    pairs += 1
        return sorted(todo), pairs

    def save(self) -> None:
        from rnn.io import atomic_write_text, dumps_strict
        if self.path is not None:
            atomic_write_text(self.path, dumps_strict({"analysis": self.analysis,
                                                       "networks": self.networks,
                                                       "pairs": self.pairs}, indent=None))
