"""Each comparison row's reward manager inside verl's real RewardLoopManager (Ray reward workers load the
plugin), scored on hand-built responses and checked against hand-computed values.

One pattern for every method: ``score(recipe, rows)`` uses the recipe composed exactly as ``main_ppo`` would
(see ``MANAGED``) in a RewardLoopManager with one reward worker and returns the per-row scores;
``score_here(recipe, rows, *overrides)`` builds the same manager class in this process (verl's
``load_reward_manager``), for knob variations without another Ray worker start.
"""

import math

import pytest
from omegaconf import OmegaConf

from lapo_test_utils.batches import reward_batch
from lapo_test_utils.verl_config import compose_recipe

RIGHT, WRONG = "so the answer is \\boxed{4}", "so the answer is \\boxed{5}"


@pytest.fixture(scope="module")
def tok(tiny_bpe_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bpe_dir)


@pytest.fixture(scope="module")
def n(tok):
    """Token length of RIGHT (= WRONG's) under the tiny tokenizer: the length every reward sees."""
    length = len(tok.encode(RIGHT, add_special_tokens=False))
    assert length == len(tok.encode(WRONG, add_special_tokens=False))
    return length


#: the recipes scored through RewardLoopManager, with the overrides their tests need
MANAGED = {
    "acc_only": (),
    "l1_exact": (),
    "l1_max": (),
    "thinkprune": ("data.max_response_length=64",),
    "dapo_overlong": ("lapo.dapo_overlong.buffer=4",),  # data.max_response_length set from n below
    "lapo_stage2_range": ("lapo.stage2.sigma=50", "lapo.stage2.plan_range_width=0.2"),
}


def _config(root, model_dir, recipe, *overrides):
    cfg = compose_recipe(recipe, f"lapo.output_root={root}", f"actor_rollout_ref.model.path={model_dir}",
                         "reward.num_workers=1", *overrides, minimal=False)
    OmegaConf.resolve(cfg)
    return cfg


@pytest.fixture(scope="module")
def managers(ray_session, tiny_bpe_dir, n, tmp_path_factory):
    from verl.experimental.reward_loop.reward_loop import RewardLoopManager

    class Manager(RewardLoopManager):
        """verl's RewardLoopManager; its workers get per-recipe actor names (verl names them
        ``reward_loop_worker_{i}``, so two managers could not coexist and start in parallel)."""

        def __init__(self, config, tag):
            self.tag = tag
            super().__init__(config)

        def _init_reward_loop_workers(self):
            self.reward_loop_workers = [
                self.reward_loop_workers_class.options(name=f"lapo_test_{self.tag}_{i}").remote(
                    self.config, self.reward_router_address)
                for i in range(self.config.reward.num_workers)
            ]

    root = tmp_path_factory.mktemp("runs")
    extra = {"dapo_overlong": (f"data.max_response_length={n + 2}",)}

    class OnFirstUse(dict):
        """recipe -> Manager, built when a test first asks for it: the two pytest-xdist workers split this
        module's tests, and each builds only the managers (one Ray reward worker each, ~10 s of CPU to start)
        that its own tests score with, instead of all six."""

        def __missing__(self, recipe):
            self[recipe] = Manager(_config(root, tiny_bpe_dir, recipe, *MANAGED[recipe], *extra.get(recipe, ())),
                                   recipe)
            return self[recipe]

    return OnFirstUse()


@pytest.fixture(scope="module")
def score(managers, tok):
    """``score(recipe, rows) -> (scores, output DataProto, response lengths)`` through RewardLoopManager."""

    def run(recipe, rows):
        data, lengths = reward_batch(tok, rows)
        out = managers[recipe].compute_rm_score(data)
        return out.batch["rm_scores"].sum(-1).tolist(), out, lengths

    return run


@pytest.fixture(scope="module")
def score_here(tiny_bpe_dir, tok, tmp_path_factory):
    """Same manager classes built in this process (verl's load_reward_manager), for knob variations."""
    from verl.trainer.ppo.reward import load_reward_manager
    from verl.utils.ray_utils import get_event_loop

    root = tmp_path_factory.mktemp("runs_here")

    def run(recipe, rows, *overrides):
        manager = load_reward_manager(_config(root, tiny_bpe_dir, recipe, *overrides), tok)
        data, lengths = reward_batch(tok, rows)
        loop = get_event_loop()
        outs = [loop.run_until_complete(manager.run_single(data[i:i + 1])) for i in range(len(data))]
        return [o["reward_score"] for o in outs], outs, lengths

    return run


def _rows(*specs):
    """(response, extra-columns) pairs -> reward_batch rows, one problem each, ground truth 4."""
    return [{"pid": f"p{i}", "gt": "4", "response": resp, "extra": extra} for i, (resp, extra) in enumerate(specs)]


def test_acc_only(score):
    scores, out, _ = score("acc_only", _rows((RIGHT, {}), (WRONG, {}), ("no box", {})))
    assert scores == [1.0, 0.0, 0.0]
    assert out.non_tensor_batch["acc"].tolist() == [1.0, 0.0, 0.0]


def test_l1_exact(score, n):
    rows = _rows((RIGHT, {"lapo_target_length": n}), (RIGHT, {"lapo_target_length": n + 1000}),
                 (RIGHT, {"lapo_target_length": max(1, n - 5)}), (WRONG, {"lapo_target_length": n + 2000}))
    scores, out, _ = score("l1_exact", rows)
    # 1[correct] - 0.0003 * |target - n|
    assert scores == pytest.approx([1.0, 0.7, 1 - 0.0003 * (n - max(1, n - 5)), -0.6], abs=1e-6)
    assert out.non_tensor_batch["target"].tolist()[:2] == [n, n + 1000]


def test_l1_max(score, score_here, n):
    rows = _rows((RIGHT, {"lapo_target_length": n}), (RIGHT, {"lapo_target_length": n + 1000}),
                 (RIGHT, {"lapo_target_length": n + 3000}), (WRONG, {"lapo_target_length": n + 1000}))
    scores, _, _ = score("l1_max", rows)
    # 1[correct] * clip(0.0003 * (target - n) + 0.5, 0, 1)
    assert scores == pytest.approx([0.5, 0.8, 1.0, 0.0], abs=1e-6)
    # delta and alpha are knobs
    scores, _, _ = score_here("l1_max", rows[:2], "lapo.l1.delta=0.1", "lapo.l1.alpha=1e-4")
    assert scores == pytest.approx([0.1, 0.2], abs=1e-6)


def test_thinkprune(score, score_here, n):
    long = RIGHT + " and I double-checked it"
    # recipe default: L = data.max_response_length (64 here); a response that fills the cap was cut: 0
    capped = RIGHT + " ok" * 64
    scores, _, lengths = score("thinkprune", _rows((RIGHT, {}), (WRONG, {}), (capped, {})))
    assert lengths[2] >= 64 and scores == [1.0, 0.0, 0.0]
    # explicit limit below the cap
    scores, out, lengths = score_here("thinkprune", _rows((RIGHT, {}), (long, {}), (WRONG, {})),
                                      f"lapo.thinkprune.limit={n}", "data.max_response_length=64")
    assert lengths[0] == n and lengths[1] > n
    assert scores == [1.0, 0.0, 0.0]  # at the limit counts; over it scores 0 although correct
    assert out[1]["reward_extra_info"]["acc"] == 1.0 and out[1]["reward_extra_info"]["limit"] == n


def test_dapo_overlong(score, n):
    long = RIGHT + " and I double-checked it"
    rows = _rows((RIGHT, {}), (long, {}), (WRONG, {}))
    # L_max = n + 2, buffer 4: no penalty up to n - 2 tokens, -1 at n + 2
    scores, out, lengths = score("dapo_overlong", rows)
    expect = [1.0 + min(0.0, -(m - (n + 2 - 4)) / 4) for m in lengths]
    expect[2] -= 1.0  # wrong
    assert scores == pytest.approx(expect, abs=1e-6)
    assert scores[0] == pytest.approx(0.5)  # n = L_max - 2: half the buffer used
    assert out.non_tensor_batch["acc"].tolist() == [1.0, 1.0, 0.0]  # lapo-verl's grader
    assert "overlong_reward" in out.non_tensor_batch


def test_stage2_range(score, n):
    rows = _rows((RIGHT, {"lapo_plan": n}), (RIGHT, {"lapo_plan": 100}), (WRONG, {"lapo_plan": n}))
    scores, out, _ = score("lapo_stage2_range", rows)
    # plan 100, width 0.2 -> [80, 120]; n < 80: C = exp(-(80 - n)^2 / (2 * 50^2))
    assert scores == pytest.approx([1.8, 1 + 0.8 * math.exp(-((80 - n) ** 2) / 5000), 0.0], abs=1e-6)
    assert out.non_tensor_batch["plan_lo"].tolist()[1:] == [80.0, math.floor(n * 0.8 + 0.5)]
    assert out.non_tensor_batch["plan_hi"].tolist()[1] == 120.0


def test_stage2_range_in_process(score_here, n):
    rows = _rows((RIGHT, {"lapo_plan": n}), (RIGHT, {"lapo_plan": 100}), (RIGHT, {"lapo_plan": None, }))
    rows[2]["record"] = False  # a validation row without a plan: accuracy only
    scores, outs, _ = score_here("lapo_stage2_range", rows, "lapo.stage2.sigma=50",
                                 "lapo.stage2.plan_range_width=0.2")
    assert scores == pytest.approx([1.8, 1 + 0.8 * math.exp(-((80 - n) ** 2) / 5000), 1.0], abs=1e-6)
    info = outs[1]["reward_extra_info"]
    assert (info["plan_lo"], info["plan_hi"], info["plan_abs_error"]) == (80.0, 120.0, 80.0 - n)
    # the same manager with width 0 (the recipe's knob turned off) is plain stage 2: same rewards, same keys
    point, outs0, _ = score_here("lapo_stage2_range", rows, "lapo.stage2.sigma=50", "lapo.stage2.plan_range_width=0")
    plain, outs2, _ = score_here("lapo_stage2", rows, "lapo.stage2.sigma=50")
    assert point == plain == pytest.approx([1.8, 1 + 0.8 * math.exp(-((100 - n) ** 2) / 5000), 1.0], abs=1e-12)
    assert set(outs0[1]["reward_extra_info"]) == set(outs2[1]["reward_extra_info"])
    assert "plan_lo" not in outs2[1]["reward_extra_info"]
