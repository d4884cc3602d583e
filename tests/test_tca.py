import torch

from helpers import run_script
from rnn.rules.bptt import BPTTConfig, BPTTTrainer
from rnn.io import load_model
from rnn.analysis.tca import ActivityRecorder, activity_tensor
from tasks import ncdi


def test_recorder_keeps_bounded_thinned_record():
    task = ncdi(2, 0.5, steps=40)
    tr = BPTTTrainer(BPTTConfig(batch=16), task, [0, 1], "cpu")
    rec = ActivityRecorder(task, [0, 1], 50, "cpu", every=1, max_records=4)
    for step in range(1, 11):
        rec(step, tr, [0, 1])
    assert len(rec.records) <= 4 and rec.every > 1
    assert rec.updates == sorted(rec.updates) and rec.updates[-1] <= 10
    h = rec.history(1, last_step=10)
    assert h["activity"].dtype == torch.float16
    assert h["activity"].shape[1:] == (8, 4, 50)       # 4 probes x 2 contexts, 40/10 steps
    X, upd, ev = activity_tensor(h)
    assert X.shape == (50, 4, len(rec.records) * 8)
    h_early = rec.history(1, last_step=rec.updates[0])
    assert h_early["activity"].shape[0] == 1


def test_record_activity_and_tca_end_to_end(models_tmp):
    r = run_script("train_models.py", "bptt_rec", "-v", "0.5", "--rdm", "--max-steps", "6",
                   "--record-activity", "--record-every", "2", "--seed", "1", "--quiet",
                   models_dir=models_tmp)
    assert r.returncode == 0, r.stderr
    h = load_model("bptt_rec", models_tmp).history
    assert h["activity"].shape == (3, 4, 75, 50)
    assert h["activity_updates"].tolist() == [2, 4, 6]
    t = run_script("tca_analysis.py", "bptt_rec", "--rank", "2", models_dir=models_tmp)
    assert t.returncode == 0, t.stderr
    assert (models_tmp / "bptt_rec_tca_rank2.png").exists()
    assert "normalised reconstruction error" in t.stdout
    none = run_script("train_models.py", "bptt_norec", "--rdm", "--max-steps", "1", "--quiet",
                      models_dir=models_tmp)
    assert none.returncode == 0
    bad = run_script("tca_analysis.py", "bptt_norec", models_dir=models_tmp)
    assert bad.returncode == 2 and "--record-activity" in bad.stderr
