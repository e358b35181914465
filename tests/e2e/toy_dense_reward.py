"""Dense toy reward for the CPU end-to-end test (verl ``custom_reward_function`` signature).

A random tiny model never solves a math problem, so an exact-match reward is 0 everywhere and GRPO advantages
(and gradients) are 0. This score varies with every response: the fraction of digit characters, plus a small
length term. Deterministic, in [0, 1.2].
"""


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    text = solution_str or ""
    digits = sum(ch.isdigit() for ch in text) / max(1, len(text))
    return float(digits + 0.2 * min(len(text), 64) / 64)
