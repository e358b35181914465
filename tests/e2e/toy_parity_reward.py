"""Toy correctness for CPU end-to-end runs (verl ``custom_reward_function`` signature): a response is "correct"
when its text has an even number of characters. A random tiny model never solves a problem; this gives about
half correct answers of varied lengths in every group, so LAPO's band and plan statistics are not all zero."""


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    return float(len(solution_str or "") % 2 == 0)
