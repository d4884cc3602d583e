"""The analyses: what a trained network's dynamics are, and how far apart two
networks are (a test keeps this list equal to the folder's modules).

    fixed_points  the fixed-point solver, batched over starts and static inputs
    step_fixed_points  the same for any step map h <- f(h, u), Jacobians by autodiff
    dynamics      one network's psychometrics and trajectories; cached fixed points
    census        fixed points counted per static input: monostable, bistable, other
    compare       the attractor input-topology descriptor, silhouettes, compare_groups
    metrics       the metric table: one record and pair function per metric
    similarity    the one compare pipeline (network_distances): activity SVD, pairs, caches
    pair_cache    each metric's cache of pairwise distances
    svcca         the probe activity, and SVCCA's canonical correlations
    tca           tensor component analysis of trial activity
    reference     the original study's SVCCA distance matrix (../shared/reference)
"""
