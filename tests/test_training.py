import random

import torch

from rnn.training import History, LazyStopRule, StopConfig


def eager_stop(accs, window=10, thr=0.9):
    for t in range(window, len(accs) + 1):
        if min(accs[t - window:t]) >= thr:
            return t
    return -1


def lazy_stop(accs_per_net, window=10, thr=0.9):
    """Drive LazyStopRule with scripted accuracies (acc of net p at step s)."""
    P = len(accs_per_net)
    rule = LazyStopRule(P, StopConfig(thr, window))
    hist = History(P)
    calls = [0] * P
    stop = [-1] * P
    active = list(range(P))
    steps = len(accs_per_net[0])

    def validate(snap, idx, s_step):
        s = int(snap["step"][0])
        for p in idx:
            calls[p] += 1
        return [accs_per_net[p][s - 1] for p in idx]

    for step in range(1, steps + 1):
        rule.push(step, {"step": torch.full((P,), step)})
        done = rule.check(step, active, validate, hist)
        for p in done:
            stop[p] = step
        active = [p for p in active if p not in done]
        if not active:
            break
    return stop, calls, hist


def test_lazy_rule_equals_validating_every_step():
    rng = random.Random(0)
    nets = []
    for _ in range(300):
        n = rng.randint(5, 120)
        p_pass = rng.random()
        nets.append([0.95 if rng.random() < p_pass else 0.85 for _ in range(n)])
    for accs in nets:
        stop, calls, hist = lazy_stop([accs])
        assert stop[0] == eager_stop(accs)
        # every recorded validation is the true accuracy of that step
        for s, a in zip(hist.val_steps[0], hist.val_acc[0]):
            assert accs[s - 1] == a
        assert calls[0] <= len(accs)


def test_lazy_rule_population_matches_each_alone_and_saves_work():
    rng = random.Random(1)
    nets = [[0.5] * k + [0.95] * (100 - k) for k in (3, 30, 55)]
    nets.append([0.91 if rng.random() < 0.8 else 0.6 for _ in range(100)])
    stop, calls, _ = lazy_stop(nets)
    for p, accs in enumerate(nets):
        assert stop[p] == eager_stop(accs)
    # a learning curve that rises late needs far fewer validations than steps
    assert calls[2] < 0.4 * stop[2]


def test_threshold_boundary_counts_as_pass():
    assert lazy_stop([[0.9] * 10])[0] == [10]
    assert lazy_stop([[0.9] * 9 + [0.8999]])[0] == [-1]
