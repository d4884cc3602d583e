"""Trial generators for the decision tasks (RDM, CDI, N-CDI)."""
from tasks.decision import (DEFAULT_MEAN, TRIAL_STEPS, VALIDATION_TRIALS, DecisionTask,
                            StaticInputs, Trials, ncdi, rdm)

__all__ = ["DEFAULT_MEAN", "TRIAL_STEPS", "VALIDATION_TRIALS", "DecisionTask", "StaticInputs",
           "Trials", "ncdi", "rdm"]
