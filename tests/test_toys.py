"""Adding a learning rule or a decision task touches two files, as
docs/how-it-works.md says: a toy of each is written here as its own module
(or class) plus its one record, and then trains, saves and loads through the
same doors as the shipped ones (the API and train_models.py)."""
import dataclasses
import sys
import textwrap

import pytest
import torch

import rnn.rules as rules
import train_models
from rnn import api
from rnn.io import load_model
from tasks.decision import DecisionTask, Trials
from tasks.table import TABLE, TaskRecord, parse

# ---- a toy learning rule: plain SGD on BPTT's gradient, in a module of its own ----

TOY_RULE = textwrap.dedent('''
    """Toy rule: stochastic gradient descent on BPTT's gradient (no Adam)."""
    from dataclasses import dataclass

    from rnn.rules.bptt import BPTTTrainer


    @dataclass(frozen=True)
    class SGDConfig:
        batch: int = 16
        lr: float = 0.05
        max_steps: int = 3


    class SGDTrainer(BPTTTrainer):
        rule = "sgd"

        def step(self, active):
            trials, x0 = self.draw_batch(active, self.cfg.batch, self.model.hidden)
            sub = self.model.select(active)
            loss, grads = self.gradients(sub, active, trials.inputs, x0, trials.targets)
            W = self.model.W_rec.clone()
            W[active] = W[active] - self.cfg.lr * grads["W_rec"]
            self.model = self.model.replace(W_rec=W)
            return loss
''')


@pytest.fixture
def toy_rule(tmp_path, monkeypatch):
    (tmp_path / "toy_sgd.py").write_text(TOY_RULE)         # file 1: the rule's module
    monkeypatch.syspath_prepend(str(tmp_path))
    bptt = rules.REGISTRY["bptt"]
    record = dataclasses.replace(                           # file 2: its record
        bptt, name="sgd", label="SGD", long_name="stochastic gradient descent",
        prefixes=("sgd",), module="toy_sgd", config="SGDConfig", trainer="SGDTrainer",
        help="SGD (lr 0.05) on BPTT's gradient.", original_budget=None)
    monkeypatch.setitem(rules.REGISTRY, "sgd", record)
    monkeypatch.setattr(rules, "RULES", (*rules.RULES, "sgd"))
    yield record
    sys.modules.pop("toy_sgd", None)


def test_a_registered_toy_rule_trains_saves_and_loads(toy_rule, tmp_path):
    task = api.task("rdm", steps=20)
    nets = api.train("sgd", task, seeds=[3, 4], max_steps=3, hidden=8)
    assert [n.rule for n in nets] == ["sgd", "sgd"] and all(n.steps == 3 for n in nets)
    init = rules.get("sgd").make(rules.get("sgd").make_config(task), task, [3], "cpu")
    assert not torch.equal(nets[0].model.W_rec, init.model.W_rec)     # it learned something
    api.save(nets[0], tmp_path / "out")
    back = load_model(nets[0].name, tmp_path / "out")
    assert back.rule == "sgd" and torch.equal(back.model.W_rec, nets[0].model.W_rec)
    assert rules.rule_from_name("sgd_net") == "sgd"


# ---- a toy decision task: RDM whose evidence shows in the first half only ----------

@dataclasses.dataclass(frozen=True)
class Pulse(DecisionTask):                                  # file 1: the task's class
    """RDM with the evidence on for the first half of the trial, then noise only."""

    @property
    def name(self) -> str:
        return "pulse"

    def build(self, strength, signs, context, rng) -> Trials:
        tr = super().build(strength, signs, context, rng)
        off = torch.arange(self.steps, device=tr.inputs.device) >= self.steps // 2
        mean_in = (signs * strength[..., None]).unsqueeze(0)
        inputs = tr.inputs - off[:, None, None, None] * mean_in
        return Trials(inputs, tr.targets, tr.strength, tr.signs, tr.context)


@pytest.fixture
def toy_task(monkeypatch):
    record = TaskRecord("pulse", "Pulse", False,                # file 2: its record
                        lambda N, v, m, s: Pulse(1, False, float(v), float(m), int(s)))
    monkeypatch.setitem(TABLE, "pulse", record)
    return record


def test_a_registered_toy_task_trains_saves_and_loads(toy_task, tmp_path):
    task = api.task("pulse", noise=0.1, steps=20)
    assert isinstance(task, Pulse) and parse("pulse").flags() == ["--task", "pulse"]
    tr = task.build(torch.full((1, 2), 0.5), torch.ones(1, 2, 1), torch.zeros(1, 2, dtype=int),
                    None)
    assert torch.all(tr.inputs[:10] == 0.5) and torch.all(tr.inputs[10:] == 0)
    net = api.train("bptt", task, seeds=[0], max_steps=2, hidden=8)[0]
    api.save(net, tmp_path)
    back = load_model(net.name, tmp_path)
    assert isinstance(back.task, Pulse) and back.task == task


def test_the_command_line_trains_a_registered_task_by_name(toy_task, tmp_path, capsys):
    code = train_models.main(["bptt_pulse", "--task", "pulse", "-v", "0.1", "--max-steps", "2",
                              "--hidden", "8", "--quiet", "--models-dir", str(tmp_path)])
    assert code == 0
    back = load_model("bptt_pulse", tmp_path)
    assert back.meta["task"]["name"] == "pulse" and isinstance(back.task, Pulse)
