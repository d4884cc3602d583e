"""Running a grid's jobs: each job a ``train_models.py --count`` subprocess
with its own threads, on an embedded Dask cluster or a running one."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rnn.errors import UserError
from rnn.grid.jobs import Job, _chunks, finished, remove_unfinished
from rnn.resume import UNUSABLE_EXIT

ROOT = Path(__file__).resolve().parents[2]

def _die_with_parent():                                  # pragma: no cover (in the child)
    """Linux: the training subprocess is killed when the worker running it dies,
    so a retried job never races an orphan."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def job_command(job: Job, folder: Path, device: str = "cpu",
                have: dict | None = None) -> list[str]:
    """The ``train_models.py --count`` command line of a job (``folder``: the
    grid's models folder): --resume (it goes
    on from its checkpoint where it has one), and --force only when no network
    of the job is finished (``have``: the cell's finished seeds, read when not
    given), so that a resumed job keeps those as they are."""
    have = finished(folder, job.cell) if have is None else have
    cmd = [sys.executable, str(ROOT / "train_models.py"), job.name, *job.cell.train_args(),
           "--count", str(job.count), "--seed", str(job.seed), "--device", device,
           "--models-dir", str(job.cell.where(folder)), "--resume", "--quiet"]
    if not any(s in have for s in range(job.seed, job.seed + job.count)):
        cmd.append("--force")
    return cmd


def training_env(threads: int) -> dict[str, str]:
    """The environment of a training subprocess: this process's, with ``threads``
    threads, and without the allocator settings a Dask nanny gives its worker
    (``distributed.nanny.pre-spawn-environ``: MALLOC_TRIM_THRESHOLD_=65536, to
    hand memory back to the system).  Inherited by training, that setting makes
    glibc map and unmap every step's tensors afresh: a GA generation on CDI
    (vanilla RNN, 2 x 20 members) took 14.4 s against 9.3 s without it, and
    21 s of system CPU against 0.3 s (bench/bench_ga_eval.py, a 2-core AMD
    EPYC).  A value other than
    Dask's (a user's own) is kept."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    try:
        import dask
        nanny = dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {}
    except ImportError:                                   # pragma: no cover
        nanny = {}
    for k, v in nanny.items():
        if k.startswith("MALLOC_") and env.get(k) == str(v):
            del env[k]
    return env


def run_job(job: Job, folder: str, threads: int = 1, device: str = "cpu",
            deadline: float | None = None) -> dict:
    """Train one job (a ``train_models.py --count`` subprocess) unless its seeds
    are already finished, or it would start after ``deadline`` (a time.time()
    value: it is then skipped, its record's ``trained`` False and ``skipped``
    True); the record of what ran where.  Runs on a worker."""
    import socket
    folder_p = Path(folder)
    t0 = time.time()
    host = f"{socket.gethostname()}:{os.getpid()}"
    seeds = range(job.seed, job.seed + job.count)
    if deadline is not None and t0 > deadline:
        return {"job": job.name, "cell": job.cell.key, "seeds": [job.seed, job.count],
                "trained": False, "skipped": True, "worker": host, "seconds": 0.0,
                "status": ["not started (deadline)"] * job.count}
    have = finished(folder_p, job.cell)
    if all(s in have for s in seeds):
        return {"job": job.name, "cell": job.cell.key, "seeds": [job.seed, job.count],
                "trained": False, "worker": host, "seconds": 0.0,
                "status": [have[s]["status"] for s in seeds]}
    from rnn.resume import path_for, reached
    ck = path_for(job.cell.where(folder_p), job.name if job.count == 1 else f"{job.name}_000")
    went_on = reached(ck) if ck.exists() else None
    cmd = job_command(job, folder_p, device, have)
    env = training_env(threads)
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env,
                       preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
        message = f"train_models.py failed for {job.name} (exit {r.returncode}): {last}"
        if r.returncode == UNUSABLE_EXIT:
            # its checkpoint was set aside (another device, thread count or versions)
            # and some of its networks are finished: the others train afresh, in jobs
            # of their own within this one's seeds
            have = finished(folder_p, job.cell)
            for sub in _chunks(job.cell, [s for s in seeds if s not in have],
                               job.cell.chunk_size()):
                rec = run_job(sub, folder, threads, device, deadline)
                if rec.get("error"):
                    return {**rec, "job": job.name, "seeds": [job.seed, job.count],
                            "status": ["failed"] * job.count}
            have = finished(folder_p, job.cell)
            return {"job": job.name, "cell": job.cell.key, "seeds": [job.seed, job.count],
                    "trained": True, "worker": host, "seconds": round(time.time() - t0, 2),
                    "status": [have[s]["status"] if s in have else "missing" for s in seeds],
                    "note": "its checkpoint could not be used; the unfinished networks "
                            "trained afresh"}
        if r.returncode == 2:
            # refused input: the same on every try, so reported once, not retried
            return {"job": job.name, "cell": job.cell.key, "seeds": [job.seed, job.count],
                    "trained": False, "worker": host, "seconds": round(time.time() - t0, 2),
                    "status": ["failed"] * job.count, "error": message}
        raise RuntimeError(message)     # a crash or a killed worker: Dask retries it
    remove_unfinished(folder_p, job.cell)
    have = finished(folder_p, job.cell)
    return {"job": job.name, "cell": job.cell.key, "seeds": [job.seed, job.count],
            "trained": True, "worker": host, "seconds": round(time.time() - t0, 2),
            "status": [have[s]["status"] if s in have else "missing" for s in seeds],
            **({"resumed_after": went_on} if went_on is not None else {})}


class Pool:
    """The Dask client that runs training jobs: to a running scheduler's
    workers (``scheduler`` address), or of an embedded local cluster (one
    worker per core, or per GPU; ``workers`` to choose), started on first use
    and kept until :meth:`close` (or the end of a ``with`` block), so that
    several :func:`run_jobs` calls in a row start one cluster."""

    def __init__(self, scheduler: str | None = None, security=None,
                 workers: int | None = None, device: str = "cpu"):
        self.scheduler, self.security, self.workers, self.device = \
            scheduler, security, workers, device
        self.client = self.cluster = None
        self.n_workers = 0

    def start(self):
        if self.client is not None:
            return self.client
        import logging

        from distributed import Client, LocalCluster
        logging.getLogger("distributed").setLevel(logging.ERROR)
        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout="10s", security=self.security)
            except (OSError, TimeoutError, ValueError, TypeError) as e:
                raise UserError(f"cannot reach the Dask scheduler at {self.scheduler}: {e}"
                                ) from None
            self.n_workers = len(self.client.scheduler_info().get("workers", {})) or 1
            return self.client
        if self.device == "cuda":
            import torch
            if torch.cuda.device_count() == 0:
                raise UserError("--device cuda: no GPU is visible")
            self.n_workers = self.workers or torch.cuda.device_count()
        else:
            self.n_workers = self.workers or os.cpu_count() or 1
        import dask
        # no time-to-live for silent workers: a run paused for a while (SIGSTOP,
        # e.g. to benchmark beside it) would otherwise, after 5 minutes, have its
        # workers dropped and their jobs restarted; a worker that dies is still
        # seen by its nanny at once
        with dask.config.set({"distributed.scheduler.worker-ttl": None}):
            self.cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1,
                                        processes=True, dashboard_address=":0",
                                        silence_logs=logging.ERROR)
        self.client = Client(self.cluster)
        return self.client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_jobs(jobs: list[Job], folder: Path, scheduler: str | None = None, security=None,
             workers: int | None = None, threads: int | None = None, device: str = "cpu",
             retries: int = 2, quiet: bool = False, deadline_s: float | None = None,
             pool: Pool | None = None) -> tuple[list[dict], list[dict]]:
    """Run training jobs on Dask: a running scheduler's workers (``scheduler``
    address) or an embedded local cluster (one worker per core, or per GPU),
    or the given ``pool``'s (kept open after); progress as jobs finish.
    Returns (records of the finished jobs, failures).

    Every job uses ``threads`` CPU threads (default 1 wherever it runs): the
    networks are then bit-identical however the grid is scheduled —
    multithreaded kernels round differently at other thread counts.
    ``deadline_s``: no job starts later than that many seconds from now (the
    jobs under way finish)."""
    from distributed import as_completed
    own = pool is None
    pool = pool or Pool(scheduler, security, workers, device)
    client = pool.start()
    n_workers = pool.n_workers
    threads = threads or 1
    print(f"Dask: {n_workers} worker(s), {threads} thread(s) per job; dashboard "
          f"{client.dashboard_link}", flush=True)
    deadline = None if deadline_s is None else time.time() + deadline_s
    futures = {client.submit(run_job, j, str(folder), threads, device, deadline, key=j.key,
                             pure=False, retries=retries): j for j in jobs}
    left = {}
    for j in jobs:
        left[j.cell.key] = left.get(j.cell.key, 0) + 1
    records, failed = [], []
    t0 = time.time()
    try:
        for fut in as_completed(futures):
            j = futures[fut]
            try:
                rec = fut.result()
                if rec.get("error"):
                    raise RuntimeError(rec["error"])
                records.append(rec)
                conv = sum(s == "converged" for s in rec["status"])
                done = (f"{conv}/{j.count} converged" if not j.cell.updates else
                        f"{sum(s == 'budget' for s in rec['status'])}/{j.count} trained "
                        f"{j.cell.updates} updates")
                went_on = (f" (went on after update {rec['resumed_after']})"
                           if "resumed_after" in rec else "")
                line = (f"{j.label}: {done} in {rec['seconds']:.0f} s on "
                        f"{rec['worker']}{went_on}" if rec["trained"] else
                        f"{j.label}: not started (past the deadline)" if rec.get("skipped")
                        else f"{j.label}: already trained")
            except Exception as e:                   # noqa: BLE001 (reported, then summed up)
                failed.append({"job": j.label, "cell": j.cell.key, "error": str(e)})
                line = f"{j.label}: FAILED ({e})"
            left[j.cell.key] -= 1
            if not quiet:
                print(f"[{time.time() - t0:6.0f} s] {line} | jobs {len(records) + len(failed)}"
                      f"/{len(jobs)}, cells done {sum(v == 0 for v in left.values())}"
                      f"/{len(left)}, failed {len(failed)}", flush=True)
    finally:
        if own:
            pool.close()
    return records, failed
