import torch
from helpers import run_script

from bench.bench_floor import count_ops


def test_count_ops_counts_each_dispatched_operation():
    a = torch.ones(3)
    assert count_ops(lambda: a.add_(1)) == 1
    assert count_ops(lambda: (a * 2).sum()) == 2
    assert count_ops(lambda: None) == 0


def test_bench_floor_with_the_bound_prints_a_row_per_rule():
    r = run_script("bench/bench_floor.py", "--rules", "heb", "--repeat", "1", "--bound")
    assert r.returncode == 0, r.stderr
    assert "cheapest operation (in-place add, 1 element):" in r.stdout
    row = next(line for line in r.stdout.splitlines() if line.startswith("| heb"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == 9
    assert int(cells[6]) > 750          # at least one operation per time step
    assert cells[8].endswith("x")
