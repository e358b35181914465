"""The paper's published rows (LAPO, arXiv 2507.15758, main tables): Pass@1 % and mean #tokens.

``PUBLISHED[base][model][benchmark] = (pass@1 %, mean tokens)``; benchmark keys match
:data:`lapo_verl.eval.benchmarks.BENCHMARKS`, plus ``"average"`` as printed in the paper.
"""

from __future__ import annotations

__all__ = ["PUBLISHED", "PUBLISHED_BASE_ROW", "ABLATIONS_DEEPSCALER", "published_rows"]

_COLS = ("math500", "aime24", "amc23", "olympiadbench", "average")


def _row(*cells: tuple[float, int]) -> dict[str, tuple[float, int]]:
    assert len(cells) == len(_COLS)
    return dict(zip(_COLS, cells))


PUBLISHED: dict[str, dict[str, dict[str, tuple[float, int]]]] = {
    "deepscaler": {  # DeepScaleR-1.5B-Preview base
        "base": _row((85.8, 3280), (35.5, 9246), (74.2, 6416), (54.6, 5974), (62.5, 6229)),
        "accuracy-only GRPO": _row((85.6, 2510), (36.9, 7319), (77.6, 4244), (55.6, 4712), (63.9, 4696)),
        "LAPO-D": _row((86.4, 2365), (37.6, 5945), (77.6, 3655), (56.1, 4499), (64.4, 4116)),
        "LAPO-I": _row((86.3, 2168), (38.1, 5371), (78.3, 3765), (56.3, 4024), (64.8, 3832)),
        "L1-Exact": _row((80.6, 1953), (24.4, 2625), (70.9, 2177), (48.8, 2357), (56.2, 2278)),
        "L1-Max": _row((81.9, 1673), (24.9, 3638), (72.7, 2705), (50.5, 2151), (57.5, 2541)),
        "ThinkPrune-4k": _row((86.6, 2042), (35.5, 6488), (76.3, 3839), (55.7, 4010), (63.5, 4094)),
    },
    "r1-distill": {  # DeepSeek-R1-Distill-Qwen-1.5B base
        "base": _row((83.1, 4031), (30.3, 12150), (68.3, 7222), (50.0, 8942), (57.9, 8086)),
        "accuracy-only GRPO": _row((83.3, 3061), (31.6, 10628), (70.5, 5307), (50.6, 6402), (59.0, 6349)),
        "LAPO-D": _row((84.7, 2566), (28.5, 8415), (72.2, 4132), (51.3, 5595), (59.2, 5177)),
        "LAPO-I": _row((84.3, 2354), (29.3, 8318), (71.2, 3568), (51.7, 4863), (59.1, 4775)),
    },
}

PUBLISHED_BASE_ROW = "base"

# Average column only (Pass@1 %, #tokens), DeepScaleR base, LAPO-I variants.
ABLATIONS_DEEPSCALER: dict[str, tuple[float, int]] = {
    "plan statistic median": (64.8, 3832),
    "plan statistic mean": (64.1, 4040),
    "plan statistic min": (63.5, 3821),
    "plan outside <think>": (63.9, 4022),
    "no plan sentence (reward only)": (63.6, 4088),
}

_ALIASES = {
    "deepscaler": "deepscaler",
    "deepscaler-1.5b": "deepscaler",
    "deepscaler-1.5b-preview": "deepscaler",
    "r1-distill": "r1-distill",
    "r1-distill-qwen-1.5b": "r1-distill",
    "deepseek-r1-distill-qwen-1.5b": "r1-distill",
    "r1": "r1-distill",
}


def published_rows(base: str) -> dict[str, dict[str, tuple[float, int]]]:
    key = _ALIASES.get(base.strip().lower())
    if key is None:
        raise ValueError(f"unknown published table {base!r}; choose from: deepscaler, r1-distill")
    return PUBLISHED[key]
