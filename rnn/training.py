"""What every learning rule shares: the validation set, the stop rule, the loop.

Stop rule (spec): after every update the candidate network is validated on
the fixed 2000-trial set; training stops when the *minimum of the last 10*
validation accuracies reaches 0.9.

Computing that literally costs one 2000-trial validation per update.  We
compute the same decision lazily: a run of ten passing validations ending at
update t is only possible if no update after the latest known failure f has
failed, so nothing needs validating before t = f + 10.  At that point the
snapshots of the last ten updates (kept in a ring buffer; they are small) are
validated newest first until one fails (then f moves there) or all ten pass
(stop at t).  The stop step and the stopped weights are exactly those of
validating every update; most updates need no validation at all.

Trainers implement :class:`Trainer`; :func:`fit` drives any of them, for one
network or a population, with per-network stopping.
"""
from __future__ import annotations

import math
import signal
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from tqdm import tqdm

from rnn.model import RateRNN, accuracy
from rnn.protocol import CLEAN, X0_SCALE, Protocol
from rnn.rng import REDRAW, VALID, Streams
from tasks import DecisionTask, Trials
from tasks.flipflop import sequence_mean


# how a network's training can end (its NAME.json 'status'); a checkpoint's networks
# still training are 'in_progress' on disk and 'interrupted' after a stop
FINISHED = ("converged", "budget", "stalled", "diverged")


@dataclass(frozen=True)
class StopConfig:
    threshold: float = 0.9   # validation accuracy that counts as a pass
    window: int = 10         # ... needed on this many consecutive updates
    stall_window: int = 500  # a network stalls when every validation in the last this
                             # many updates (since a restart) is below ...
    stall_below: float = 0.6  # ... this accuracy (chance is 0.5); 0 disables the check
    stall_stop: bool = True   # True: it stops (status 'stalled'); False: it is noted
                              # (History.stall_step, a line above the bar), trains on
    until_budget: bool = False  # True: every network trains all its updates (the fixed-length
                                # experiment); no validation counts as a pass, so the lazy
                                # rule validates every `window` updates and stops nothing

    def to_dict(self) -> dict:
        """The rule as recorded in NAME.json and checkpoint fingerprints (``until_budget``
        only where set, so the record of an ordinary run is as it always was)."""
        d = asdict(self)
        if not self.until_budget:
            del d["until_budget"]
        return d

    @staticmethod
    def for_run(protocol: Protocol, on_stall: str, stall_window: int = 500) -> "StopConfig":
        """The stop rule of a run: the stall rule off under the original budgets (the
        original trained to its budgets); ``on_stall``: 'stop' or 'continue'."""
        return StopConfig(stall_window=0 if protocol.original_budgets else stall_window,
                          stall_stop=on_stall == "stop")


@dataclass
class ValidationSet:
    """The fixed validation trials of each network (own seed each).

    With the original's lenient rule (``protocol.lenient_stop``) trials of
    strength 0 always count as correct and the initial states are redrawn at
    every check: for the check of update ``step`` from the REDRAW stream of
    the network's seed at counter ``step``, so the draw depends only on the
    network and the update, never on which other networks share the call."""
    trials: Trials           # inputs [T, P, 2000, I]
    x0: torch.Tensor         # [P, 2000, H]
    seeds: list[int] = field(default_factory=list)
    protocol: Protocol = CLEAN
    task: object = None      # a sequence task (every step a target) scores its own trials

    @staticmethod
    def make(task: DecisionTask, seeds: list[int], hidden: int, device,
             protocol: Protocol = CLEAN) -> "ValidationSet":
        rng = Streams(seeds, VALID, device)
        trials = task.validation_set(rng)
        x0 = X0_SCALE * rng.normal(trials.n_trials, hidden)
        seq = task if getattr(task, "sequence", False) else None
        return ValidationSet(trials, x0, list(seeds), protocol, seq)

    def accuracy(self, model: RateRNN, idx: torch.Tensor, step: int = 0) -> torch.Tensor:
        """Accuracy of ``model`` (networks matching ``idx``) on their sets, [len(idx)];
        ``step``: the update being checked (used by the lenient rule's redraws)."""
        tr = self.trials.select(idx)
        if self.task is not None:
            with torch.no_grad():
                return sequence_mean(model, tr, self.x0[idx], self.task.score_terms)
        if not self.protocol.lenient_stop:
            return accuracy(model, tr.inputs, self.x0[idx], tr.targets)
        seeds = [self.seeds[i] for i in idx.tolist()]
        x0 = X0_SCALE * Streams(seeds, REDRAW, self.x0.device, counter=step).normal(
            tr.n_trials, self.x0.shape[-1])
        return accuracy(model, tr.inputs, x0, tr.targets, always_correct=tr.strength == 0)


class Trainer:
    """Interface of a learning rule running P networks.

    ``model`` is the current stack of P candidate networks (what validation
    tests and what gets saved); ``trainable`` names the fields of the model
    that updates change (the rest are fixed during training).
    """
    rule: str = ""
    trainable: tuple[str, ...] = ("W_rec",)
    model: RateRNN

    def step(self, active: torch.Tensor) -> torch.Tensor:
        """One update of the networks ``active`` (index tensor); returns their loss."""
        raise NotImplementedError

    def draw_batch(self, active, n: int, hidden: int):
        """``n`` training trials and their initial states for each network of
        ``active`` (an index tensor or list), from the networks' own TRAIN
        streams (``self.data``): a network's batches depend on its seed and its
        update count only, never on which networks share the call."""
        rng = self.data.subset(active.tolist() if isinstance(active, torch.Tensor) else active)
        trials = self.task.sample(n, rng)
        x0 = self.protocol.initial_states(rng, n, hidden)
        self.data.counter = rng.counter
        return trials, x0

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self.model, k).clone() for k in self.trainable}

    def candidate(self, snap: dict[str, torch.Tensor], idx: torch.Tensor) -> RateRNN:
        """The networks ``idx`` with the trainable weights of ``snap``."""
        sub = self.model.select(idx)
        return sub.replace(**{k: v[idx] for k, v in snap.items()})

    def restore(self, snap: dict[str, torch.Tensor], idx: list[int]) -> None:
        """Put the trainable weights of ``snap`` back into networks ``idx``."""
        changes = {}
        for k, v in snap.items():
            w = getattr(self.model, k).clone()
            w[idx] = v[idx]
            changes[k] = w
        self.model = self.model.replace(**changes)

    def pop_restarts(self) -> list[int]:
        """Networks that restarted from scratch in the last step (their stop-rule
        window starts again)."""
        return []

    def extra_meta(self, p: int) -> dict:
        """Rule-specific facts about network p for its JSON."""
        return {}

    def extra_history(self, p: int) -> dict[str, torch.Tensor]:
        """Rule-specific histories of network p for its .pt file."""
        return {}


@dataclass
class History:
    """Per-network training record."""
    P: int
    loss: list[torch.Tensor] = field(default_factory=list)    # per update, [P] (NaN: inactive)
    val_steps: list[list[int]] = field(default_factory=list)
    val_acc: list[list[float]] = field(default_factory=list)
    stop_step: list[int] = field(default_factory=list)         # -1: did not stop
    stop_acc: list[float] = field(default_factory=list)        # accuracy at the stop step
    end_step: list[int] = field(default_factory=list)          # last update of a diverged run
    stall_step: list[int] = field(default_factory=list)        # update the stall rule first
                                                               # held (-1: never)

    def __post_init__(self):
        self.val_steps = [[] for _ in range(self.P)]
        self.val_acc = [[] for _ in range(self.P)]
        self.stop_step = [-1] * self.P
        self.stop_acc = [math.nan] * self.P
        self.end_step = [-1] * self.P
        self.stall_step = [-1] * self.P

    def steps_run(self, p: int) -> int:
        """Updates network p ran: to its stop step, its divergence, or all so far."""
        for s in (self.stop_step[p], self.end_step[p]):
            if s > 0:
                return s
        return len(self.loss)

    def record_val(self, p: int, step: int, acc: float) -> None:
        self.val_steps[p].append(step)
        self.val_acc[p].append(acc)

    def losses(self, p: int) -> torch.Tensor:
        if not self.loss:
            return torch.zeros(0)
        col = torch.stack(self.loss)[:, p]
        return col[:self.steps_run(p)].clone()

    def validation(self, p: int) -> tuple[torch.Tensor, torch.Tensor]:
        order = sorted(range(len(self.val_steps[p])), key=lambda i: self.val_steps[p][i])
        return (torch.tensor([self.val_steps[p][i] for i in order], dtype=torch.long),
                torch.tensor([self.val_acc[p][i] for i in order], dtype=torch.float64))


class LazyStopRule:
    """Exactly the 'minimum of the last `window` accuracies ≥ threshold' rule,
    validating only what can change the decision (see the module docstring)."""

    def __init__(self, P: int, cfg: StopConfig):
        self.cfg = cfg
        self.last_fail = [0] * P                 # latest update known to fail (0: start)
        self.snaps: deque = deque(maxlen=cfg.window)
        self.known: dict[tuple[int, int], float] = {}
        self.latest: list[float] = [math.nan] * P

    def push(self, step: int, snap: dict[str, torch.Tensor]) -> None:
        self.snaps.append((step, snap))

    def check(self, step: int, active: list[int], validate: Callable, history: History
              ) -> list[int]:
        """Return the networks of ``active`` that meet the rule at ``step``."""
        w = self.cfg.window
        thr = math.inf if self.cfg.until_budget else self.cfg.threshold
        pending = [p for p in active if step - self.last_fail[p] >= w]
        depth = 0
        while pending and depth < w:
            s_step, snap = self.snaps[-1 - depth]
            todo = [p for p in pending if (p, s_step) not in self.known]
            if todo:
                accs = validate(snap, todo, s_step)
                for p, a in zip(todo, accs):
                    self.known[(p, s_step)] = a
                    history.record_val(p, s_step, a)
                    if depth == 0:
                        self.latest[p] = a
            still = []
            for p in pending:
                if self.known[(p, s_step)] < thr:
                    self.last_fail[p] = s_step
                else:
                    still.append(p)
            pending = still
            depth += 1
        # forget accuracies that can no longer be read
        oldest = self.snaps[0][0]
        for key in [k for k in self.known if k[1] < oldest]:
            del self.known[key]
        return pending


@dataclass
class FitResult:
    history: History
    status: list[str]          # per network: converged | budget | stalled | diverged | interrupted
                               # (also the in-progress state of a checkpoint)
    final_acc: list[float]
    steps_run: list[int]
    wall_time: float
    loop: dict | None = None   # checkpoints: the loop's state (rnn.resume)
    resumed_at: list[int] = field(default_factory=list)  # updates a resumed run went on from
    # the process's CPU seconds (every thread) over the run's updates, and how many
    # updates they cover: all of them, unless the run went on from a checkpoint that
    # predates the record (then those of the stretches since); a paused (SIGSTOP) or
    # crowded process's wall time grows, its CPU time does not
    cpu_time: float = 0.0
    cpu_updates: int = 0


@contextmanager
def stop_requests():
    """While the block runs, Ctrl-C (SIGINT) and SIGTERM only *ask* to stop:
    yields a list that gets the signal's number, and the loop stops after the
    update under way.  A second signal raises KeyboardInterrupt at once.

    An asynchronous KeyboardInterrupt can be lost -- raised while Python runs
    a finaliser or a garbage-collector callback, it is printed as "Exception
    ignored" and training goes on (a CI run's Ctrl-C test once saw training go
    on after SIGINT; tests/test_hardening.py reproduces this way of losing it)
    -- and it can land in the middle of an update; a flag checked between
    updates can do neither.
    Outside the main thread (where handlers cannot be set) nothing changes."""
    asked: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield asked
        return

    def ask(signum, frame):
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)

    previous = {s: signal.signal(s, ask) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield asked
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


CHECKPOINT_SECONDS = 600.0      # fit's checkpoints: at least this often (besides every 100)


class CheckpointClock:
    """When a checkpoint is due: every ``every`` updates, or sooner once
    ``seconds`` have passed since the last one (None: by updates only).  A
    gated GA's generation takes half a minute, so 100 of them are most of an
    hour that a killed job would otherwise lose."""

    def __init__(self, every: int, seconds: float | None):
        self.every, self.seconds, self.last = every, seconds, time.time()

    def due(self, step: int) -> bool:
        now = time.time()
        if step % self.every == 0 or (self.seconds is not None
                                      and now - self.last >= self.seconds):
            self.last = now
            return True
        return False


def fit(trainer: Trainer, val: ValidationSet, max_steps: int, stop: StopConfig = StopConfig(),
        quiet: bool = False, checkpoint: Callable[[FitResult], None] | None = None,
        checkpoint_every: int = 100, checkpoint_seconds: float | None = CHECKPOINT_SECONDS,
        unit: str = "step",
        observers: tuple[Callable, ...] = (), names: list[str] | None = None,
        resume: dict | None = None) -> FitResult:
    """Train until every network meets the stop rule or ``max_steps`` updates.

    On Ctrl-C or SIGTERM (after the update under way; see ``stop_requests``)
    or a KeyboardInterrupt the partial result is returned with status
    'interrupted' for the networks still training (the caller saves it).
    A network whose loss or trainable weights become non-finite stops at once
    with status 'diverged', its last finite weights put back.
    ``observers`` are called as ``obs(step, trainer, active)`` after each
    update (e.g. the activity recorder for TCA).  ``names`` label the
    networks in messages.

    Checkpoints (see ``CheckpointClock``; and after the last update when
    asked to stop) carry the loop's state in ``FitResult.loop``;
    ``resume``, such a state with the trainer's own put back (rnn.resume),
    goes on from its update exactly as the run would have.
    """
    P = trainer.model.n_networks
    dev = trainer.model.device
    loop = LoopState.new(P, stop)
    start, t0 = 0, time.time()
    if resume is not None:
        start, elapsed = loop.restore(resume, trainer, max_steps)
        t0 -= elapsed
        loop.resumed_at.append(start)
    bar = tqdm(total=max_steps, initial=start, disable=quiet, desc=trainer.rule, unit=unit,
               dynamic_ncols=True, leave=True)

    def validate(snap, idx, s_step):
        it = torch.tensor(idx, device=dev)
        return val.accuracy(trainer.candidate(snap, it), it, s_step).tolist()

    def result(kind: str) -> FitResult:
        """kind: 'final' (validates any network whose last accuracy is unknown),
        'checkpoint' or 'interrupted' (report what is known, validate nothing)."""
        st = list(loop.status)
        if kind != "final":
            st = [("interrupted" if s == "budget" else s) for s in st]
        steps_run = [loop.hist.steps_run(p) for p in range(P)]
        accs = final_acc(trainer, val, loop.hist, loop.rule, fresh=(kind == "final"))
        seconds, updates = loop.cpu_so_far()
        return FitResult(loop.hist, st, accs, steps_run, time.time() - t0,
                         resumed_at=list(loop.resumed_at), cpu_time=seconds, cpu_updates=updates)

    def saved(step: int) -> FitResult:
        res = result("checkpoint")
        res.loop = loop.to_dict(step, time.time() - t0)
        return res

    def warn(p: int) -> None:
        """A network that sits near chance and trains on (the stall rule off)."""
        if not quiet:
            who = f"{names[p]}: " if names else (f"network {p}: " if P > 1 else "")
            bar.write(f"{who}every validation of the last {stop.stall_window} {plural(unit)} "
                      f"below {stop.stall_below} (near chance); training on")

    loop.last_good = trainer.snapshot()
    clock = CheckpointClock(checkpoint_every, checkpoint_seconds)
    with stop_requests() as asked:
        try:
            for step in range(start + 1, max_steps + 1):
                if not _update(trainer, loop, step, observers, validate, stop, warn, bar):
                    break
                if asked:
                    if checkpoint is not None:
                        checkpoint(saved(step))   # the update is complete: resumable here
                    raise KeyboardInterrupt
                if checkpoint is not None and clock.due(step):
                    checkpoint(saved(step))
        except KeyboardInterrupt:
            bar.close()
            return result("interrupted")
        bar.close()
        return result("final")


def _update(trainer: Trainer, loop: "LoopState", step: int, observers, validate,
            stop: StopConfig, warn, bar) -> bool:
    """One update of the active networks and the checks after it (divergence,
    restarts, observers, the stop rule, the stall rule); False when no network
    is left training."""
    P = loop.hist.P
    loss = trainer.step(torch.tensor(loop.active, device=trainer.model.device))
    loop.done = step
    full = torch.full((P,), math.nan, dtype=torch.float64)
    full[loop.active] = loss.detach().to("cpu", torch.float64)
    loop.hist.loss.append(full)
    loop.active, loop.last_good = _drop_diverged(trainer, full, loop.active, loop.last_good,
                                                 loop.status, loop.hist, loop.rule, step)
    for p in trainer.pop_restarts():
        loop.rule.last_fail[p] = max(loop.rule.last_fail[p], step - 1)
        loop.since[p] = step - 1
    for obs in observers:
        obs(step, trainer, loop.active)
    if not loop.active:
        bar.update(1)
        return False
    loop.rule.push(step, loop.last_good)
    loop.active = _mark_converged(loop.rule, step, loop.active, validate, loop.hist,
                                  loop.status)
    loop.active = _mark_stalled(loop.hist, step, loop.active, loop.since, stop, loop.status,
                                warn)
    _progress(bar, loss, loop.rule, P, loop.active)
    return bool(loop.active)


def _drop_diverged(trainer: Trainer, full: torch.Tensor, active: list[int], last_good: dict,
                   status: list[str], hist: History, rule: LazyStopRule, step: int
                   ) -> tuple[list[int], dict]:
    """The networks whose loss (``full``) or trainable weights became non-finite
    in this update stop: their last finite weights (``last_good``) put back,
    status 'diverged'.  Returns the networks still training and the snapshot."""
    P = trainer.model.n_networks
    snap = trainer.snapshot()
    finite = torch.stack([torch.isfinite(v.reshape(P, -1)).all(1).cpu()
                          for v in snap.values()]).all(0)
    bad = [p for p in active if not (math.isfinite(full[p]) and finite[p])]
    if not bad:
        return active, snap
    trainer.restore(last_good, bad)
    for p in bad:
        status[p] = "diverged"
        hist.end_step[p] = step
        rule.latest[p] = math.nan
    return [p for p in active if p not in bad], trainer.snapshot()


def _mark_converged(rule: LazyStopRule, step: int, active: list[int], validate,
                    hist: History, status: list[str]) -> list[int]:
    """The stop rule's check after update ``step``: networks that meet it stop,
    status 'converged'.  Returns the networks still training."""
    done = rule.check(step, active, validate, hist)
    for p in done:
        hist.stop_step[p] = step
        hist.stop_acc[p] = rule.known[(p, step)]
        status[p] = "converged"
    return [p for p in active if p not in done] if done else active


def _mark_stalled(hist: History, step: int, active: list[int], since: list[int],
                  stop: StopConfig, status: list[str], warn: Callable[[int], None]
                  ) -> list[int]:
    """The stall rule after update ``step``: a network near chance for the whole
    window is marked; it stops (status 'stalled') when the rule stops stalled
    networks, else ``warn(p)`` says so once.  Returns the networks still training."""
    stalled = [p for p in active
               if hist.stall_step[p] < 0 and _stalled(hist, p, step, since[p], stop)]
    for p in stalled:
        hist.stall_step[p] = step
        if stop.stall_stop:
            status[p] = "stalled"
            hist.end_step[p] = step
        else:
            warn(p)
    return [p for p in active if p not in stalled] if stalled and stop.stall_stop else active


def _progress(bar, loss: torch.Tensor, rule: LazyStopRule, P: int, active: list[int]) -> None:
    """The progress bar's numbers after an update: mean loss, best latest
    validation accuracy, networks done."""
    accs = [a for a in (rule.latest[p] for p in range(P)) if not math.isnan(a)]
    post = {"loss": f"{float(loss.mean()):.4f}"}
    if accs:
        post["val_acc"] = f"{(max(accs) if P > 1 else accs[0]):.3f}"
    if P > 1:
        post["converged"] = f"{P - len(active)}/{P}"
    bar.set_postfix(post, refresh=False)
    bar.update(1)


@dataclass
class LoopState:
    """What :func:`fit` carries from one update to the next, and what a
    checkpoint holds of it (``to_dict``; rnn.resume writes it): the history,
    the stop rule's memory, which networks train on, each one's status and the
    update of its last (re)start, and the updates it was resumed at.
    ``last_good``: the last weights with a finite loss (not saved: the weights
    are the trainer's)."""
    hist: History
    rule: LazyStopRule
    active: list[int]
    status: list[str]
    since: list[int]
    resumed_at: list[int] = field(default_factory=list)
    last_good: dict | None = None
    # the CPU time: its seconds and the updates they cover before this stretch of the
    # run, the last update completed, and where this stretch began (process_time(), update)
    cpu: tuple[float, int] = (0.0, 0)
    done: int = 0
    stretch: tuple[float, int] = field(default_factory=lambda: (time.process_time(), 0))

    @classmethod
    def new(cls, P: int, stop: StopConfig) -> "LoopState":
        return cls(History(P), LazyStopRule(P, stop), list(range(P)), ["budget"] * P, [0] * P)

    def cpu_so_far(self) -> tuple[float, int]:
        """The process's CPU seconds over the run's updates, and how many updates
        they cover: the stretches before this one (as far as recorded) and this one."""
        return (self.cpu[0] + time.process_time() - self.stretch[0],
                self.cpu[1] + self.done - self.stretch[1])

    def to_dict(self, step: int, elapsed: float) -> dict:
        """What :func:`fit` needs to go on after update ``step``."""
        hist, rule = self.hist, self.rule
        seconds, updates = self.cpu_so_far()
        P = hist.P
        loss = torch.stack(hist.loss) if hist.loss else torch.zeros(0, P, dtype=torch.float64)
        return {"step": step, "active": list(self.active), "status": list(self.status),
                "since": list(self.since), "elapsed": float(elapsed),
                "cpu": [float(seconds), int(updates)],
                "resumed_at": list(self.resumed_at),
                "loss": loss.clone(),
                "val_steps": [list(v) for v in hist.val_steps],
                "val_acc": [list(v) for v in hist.val_acc],
                "stop_step": list(hist.stop_step), "stop_acc": list(hist.stop_acc),
                "end_step": list(hist.end_step), "stall_step": list(hist.stall_step),
                "last_fail": list(rule.last_fail),
                "snaps": [{"step": s, "weights": snap} for s, snap in rule.snaps],
                "known": [[p, s, a] for (p, s), a in rule.known.items()],
                "latest": list(rule.latest)}

    def restore(self, d: dict, trainer: Trainer, max_steps: int) -> tuple[int, float]:
        """Put a saved state back, once :func:`_check_loop_state` has accepted
        it; returns (update, seconds so far)."""
        hist, rule = self.hist, self.rule
        _check_loop_state(d, trainer, rule, hist.P, max_steps)
        dev = trainer.model.device
        self.active, self.status, self.since = list(d["active"]), list(d["status"]), \
            list(d["since"])
        self.resumed_at = list(d["resumed_at"])
        hist.loss = list(d["loss"].unbind(0))
        hist.val_steps = [list(v) for v in d["val_steps"]]
        hist.val_acc = [list(v) for v in d["val_acc"]]
        for k in ("stop_step", "stop_acc", "end_step", "stall_step"):
            setattr(hist, k, list(d[k]))
        rule.last_fail = list(d["last_fail"])
        rule.latest = list(d["latest"])
        rule.snaps.clear()
        for sn in d["snaps"]:
            rule.snaps.append((sn["step"], {k: v.to(dev) for k, v in sn["weights"].items()}))
        rule.known = {(p, s): a for p, s, a in d["known"]}
        # a checkpoint older than the CPU record: the CPU time counts from here
        self.cpu = tuple(d["cpu"]) if "cpu" in d else (0.0, 0)
        self.done = d["step"]
        self.stretch = (time.process_time(), self.done)
        return d["step"], d["elapsed"]


def _ints(v, n=None, low=None, high=None) -> bool:
    """A list of ``n`` integers (not booleans) in [low, high]."""
    ok = isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
    ok = ok and (n is None or len(v) == n)
    return ok and all((low is None or x >= low) and (high is None or x <= high) for x in v)


def _floats(v, n) -> bool:
    return isinstance(v, list) and len(v) == n and all(isinstance(x, float) for x in v)


def _check_loop_state(d: dict, trainer: Trainer, rule: LazyStopRule, P: int,
                      max_steps: int) -> None:
    """Raise rnn.resume.ResumeError (why, one line) unless ``d`` is a loop state
    this run can go on from: every field of the right type, length and range,
    the weights put back and the stop rule's window finite and of this run's shapes."""
    from rnn.resume import ResumeError, cpu_record
    try:
        step = d["step"]
        if not (isinstance(step, int) and 1 <= step <= max_steps):
            raise ResumeError(f"its update {step!r} is outside 1..{max_steps}")
        if not (_ints(d["active"], low=0, high=P - 1) and len(set(d["active"])) ==
                len(d["active"]) and d["active"]):
            raise ResumeError("its list of training networks is damaged")
        if not (isinstance(d["status"], list) and len(d["status"]) == P
                and all(x in FINISHED for x in d["status"])):
            raise ResumeError("its statuses are damaged")
        for k in ("since", "stop_step", "end_step", "stall_step", "last_fail"):
            if not _ints(d[k], P, -1, step):
                raise ResumeError(f"its {k} is damaged")
        for k in ("stop_acc", "latest"):
            if not _floats(d[k], P):
                raise ResumeError(f"its {k} is damaged")
        loss = d["loss"]
        if not (isinstance(loss, torch.Tensor) and loss.dtype == torch.float64
                and tuple(loss.shape) == (step, P)):
            raise ResumeError("its loss history is damaged")
        vs, va = d["val_steps"], d["val_acc"]
        if not (isinstance(vs, list) and isinstance(va, list) and len(vs) == len(va) == P
                and all(_ints(a, low=1, high=step) and isinstance(b, list) and len(a) == len(b)
                        and all(isinstance(x, float) for x in b) for a, b in zip(vs, va))):
            raise ResumeError("its validation history is damaged")
        now = trainer.snapshot()
        # the weights put back (a diverged network's are its last finite ones; Adam's
        # moments or a baseline may legitimately be non-finite there)
        if not all(bool(torch.isfinite(v).all()) for v in now.values()):
            raise ResumeError("its networks' weights are not finite")
        shapes = {k: (tuple(v.shape), v.dtype) for k, v in now.items()}
        snaps = d["snaps"]
        if not (isinstance(snaps, list) and 1 <= len(snaps) <= rule.cfg.window):
            raise ResumeError("its stop-rule window is damaged")
        for sn in snaps:
            w = sn.get("weights") if isinstance(sn, dict) else None
            if not (isinstance(sn.get("step"), int) and isinstance(w, dict)
                    and set(w) == set(shapes)
                    and all(isinstance(w[k], torch.Tensor)
                            and (tuple(w[k].shape), w[k].dtype) == shapes[k]
                            and bool(torch.isfinite(w[k]).all()) for k in w)):
                raise ResumeError("its stop-rule window is damaged")
        if not (isinstance(d["known"], list) and all(
                isinstance(e, list) and len(e) == 3 and _ints(e[:2]) and isinstance(e[2], float)
                for e in d["known"])):
            raise ResumeError("its stop-rule accuracies are damaged")
        if not (isinstance(d["elapsed"], float) and d["elapsed"] >= 0):
            raise ResumeError("its wall time is damaged")
        if "cpu" in d and not (cpu_record(d["cpu"]) and d["cpu"][1] <= step):
            raise ResumeError("its CPU time is damaged")
        if not _ints(d["resumed_at"], low=1, high=step):
            raise ResumeError("its list of resumptions is damaged")
    except (KeyError, TypeError, AttributeError):
        raise ResumeError("its loop state is incomplete") from None


def plural(unit: str) -> str:
    """'step' -> 'steps', 'batch' -> 'batches' (the names of one update)."""
    return unit + ("es" if unit.endswith("ch") else "s")


def _stalled(hist: History, p: int, step: int, start: int, stop: StopConfig) -> bool:
    """Every validation of network p in the last ``stall_window`` updates (all
    after its last restart; at least 10 of them) is below ``stall_below``."""
    w = stop.stall_window
    if not w or stop.until_budget or stop.stall_below <= 0 or step - start < w or step % 10:
        return False
    recent = [a for s, a in zip(hist.val_steps[p], hist.val_acc[p]) if s > step - w]
    return len(recent) >= 10 and max(recent) < stop.stall_below


def final_acc(trainer: Trainer, val: ValidationSet, hist: History, rule: LazyStopRule,
              fresh: bool) -> list[float]:
    """Validation accuracy of each network's current weights: known values are
    reused; unknown ones are computed when ``fresh``, else NaN."""
    P = trainer.model.n_networks
    out = [math.nan] * P
    need = []
    for p in range(P):
        if hist.stop_step[p] > 0:
            out[p] = hist.stop_acc[p]
        elif (p, len(hist.loss)) in rule.known:
            out[p] = rule.known[(p, len(hist.loss))]
        else:
            need.append(p)
    if need and fresh:
        it = torch.tensor(need, device=trainer.model.device)
        accs = val.accuracy(trainer.model.select(it), it, len(hist.loss)).tolist()
        for p, a in zip(need, accs):
            out[p] = a
    return out
