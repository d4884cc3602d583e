"""Experiment grids (a test keeps this list equal to the folder's modules).

    format   the grid file: its cells and comparisons, read and checked
    jobs     planning: the finished networks of a cell by seed, the jobs still needed
    runner   running the jobs: train_models.py subprocesses on a Dask cluster

Import each name from its module (``from rnn.grid.format import read_grid``).
"""
