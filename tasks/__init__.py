"""The decision tasks (RDM, CDI, N-CDI): their trial generators
(:mod:`tasks.decision`) and the task table that names them (:mod:`tasks.table`)."""
from tasks.decision import (DEFAULT_MEAN, TRIAL_STEPS, VALIDATION_TRIALS, DecisionTask,
                            StaticInputs, Trials, ncdi, rdm)
from tasks.table import TABLE, TaskName, parse

__all__ = ["DEFAULT_MEAN", "TABLE", "TRIAL_STEPS", "VALIDATION_TRIALS", "DecisionTask",
           "StaticInputs", "TaskName", "Trials", "ncdi", "parse", "rdm"]
