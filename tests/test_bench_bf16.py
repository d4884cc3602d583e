from helpers import run_script


def test_bench_bf16_runs_and_reports_each_product():
    r = run_script("bench/bench_bf16.py", "--repeat", "1", "--members", "2", "--steps", "2")
    assert r.returncode == 0, r.stderr
    for row in ("| float32 |", "| bfloat16 |", "| bfloat16, cast in and out |"):
        assert row in r.stdout
    assert "out_dtype): " in r.stdout and "bfloat16 " in r.stdout.splitlines()[-1]
