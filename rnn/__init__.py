"""Rate RNNs (and vanilla RNNs, GRUs, LSTMs) trained by several learning rules,
and the analyses that compare what they learned.  The packages (each opens with its own map):

    rules/      the learning rules: the registry (one record per rule) and a
                module per rule
    analysis/   fixed points, the attractor census and topology, the metric
                table and the one compare pipeline
    io/         files: the model file format, the guarded writer and the
                reader of network records, other tools' files, groups files
    grid/       experiment grids: file format, job planning, the Dask runner

and the core every one of them shares (a test keeps this list equal to the
folder's modules):

    model          the continuous-time rate network
    arch           the discrete-time architectures: vanilla RNN, GRU, LSTM
    training       the one training loop: validation set, stop rule, statuses
    resume         checkpoints a run goes on from
    run            a training run: its plan, its batches and files, and the one
                   builder of a network's record (NAME.json)
    protocol       training protocols: this tool's clean one and the original's
    rng            counter-based random streams, one per network
    sizing         memory: how many networks fit in one batch
    validate       the validators every door shares
    errors         UserError: one line, exit status 2
    cli            the command-line plumbing every script shares
    analysis_args  the activity-analysis flags of the analysis scripts
    api            the tool from Python (a notebook)
    plotting       figures
"""
