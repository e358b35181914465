"""Correctness stand-in for CPU runs of a random tiny model (verl ``custom_reward_function`` signature): every
response counts as correct, so LAPO's length machinery (Eq. 8 plan updates) has correct lengths to work with."""


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    return 1.0
