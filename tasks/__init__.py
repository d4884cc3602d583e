"""The tasks: the decision tasks (RDM, CDI, N-CDI) and their trial generators
(:mod:`tasks.decision`), the 3-bit flip-flop, whose every step has a target
(:mod:`tasks.flipflop`), and the task table that names them (:mod:`tasks.table`)."""
from tasks.decision import (DEFAULT_MEAN, TRIAL_STEPS, VALIDATION_TRIALS, DecisionTask,
                            StaticInputs, Trials, ncdi, rdm)
from tasks.flipflop import FlipFlopTask, SequenceTrials, flipflop
from tasks.table import TABLE, TaskName, parse

__all__ = ["DEFAULT_MEAN", "TABLE", "TRIAL_STEPS", "VALIDATION_TRIALS", "DecisionTask",
           "FlipFlopTask", "SequenceTrials", "StaticInputs", "TaskName", "Trials", "flipflop",
           "ncdi", "parse", "rdm"]
