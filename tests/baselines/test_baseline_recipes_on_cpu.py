"""Baseline and ablation recipes compose with verl's ppo_trainer config, pass validate_config, keep the
paper's GRPO settings, and wire the right reward manager and knobs."""

import pytest
from omegaconf import OmegaConf

from lapo_test_utils.verl_config import compose_recipe, validate

RECIPES = {
    # recipe: (reward manager, advantage estimator, stage)
    "acc_only": ("lapo_acc_only", "lapo_grpo", 1),
    "l1_exact": ("lapo_l1_exact", "lapo_grpo", 1),
    "l1_max": ("lapo_l1_max", "lapo_grpo", 1),
    "thinkprune": ("lapo_thinkprune", "lapo_grpo", 1),
    "dapo_overlong": ("dapo", "lapo_grpo", 1),
    "lapo_stage2_before_think": ("lapo_stage2", "lapo_grpo", 2),
    "lapo_stage2_implicit": ("lapo_stage2", "lapo_grpo", 2),
    "lapo_stage2_range": ("lapo_stage2", "lapo_grpo", 2),
}


def _cfg(recipe, tmp_path, *overrides):
    cfg = compose_recipe(recipe, f"lapo.output_root={tmp_path}", *overrides)
    validate(cfg)
    OmegaConf.resolve(cfg)
    return cfg


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recipe_composes_validates_and_shares_paper_settings(recipe, tmp_path):
    cfg = _cfg(recipe, tmp_path)
    manager, estimator, stage = RECIPES[recipe]
    assert cfg.reward.reward_manager.name == manager
    assert cfg.algorithm.adv_estimator == estimator and cfg.lapo.stage == stage
    # the paper's GRPO settings and caps, unchanged by the recipe
    a = cfg.actor_rollout_ref.actor
    assert cfg.actor_rollout_ref.rollout.n == 8 and cfg.data.train_batch_size == 128 and a.ppo_mini_batch_size == 16
    assert a.optim.lr == 1e-6 and a.kl_loss_coef == 1e-4 and a.kl_loss_type == "low_var_kl" and a.use_kl_loss
    assert cfg.data.max_response_length == 4096 and cfg.data.max_prompt_length == 1024
    assert cfg.actor_rollout_ref.rollout.temperature == 1.0 and cfg.trainer.total_epochs == 3
    assert cfg.data.custom_cls.name == "LapoDataset"
    assert cfg.trainer.default_local_dir.startswith(cfg.lapo.run_dir)


def test_baselines_get_distinct_run_dirs(tmp_path):
    dirs = {r: _cfg(r, tmp_path, "lapo.experiment=same").lapo.run_dir for r in RECIPES if RECIPES[r][2] == 1}
    dirs["lapo_stage1"] = _cfg("lapo_stage1", tmp_path, "lapo.experiment=same").lapo.run_dir
    assert len(set(dirs.values())) == len(dirs), dirs
    # knob sweeps of a baseline move the run too
    a = _cfg("l1_exact", tmp_path, "lapo.l1.alpha=3e-4").lapo.run_dir
    b = _cfg("l1_exact", tmp_path, "lapo.l1.alpha=1e-3").lapo.run_dir
    c = _cfg("thinkprune", tmp_path, "data.max_response_length=3072").lapo.run_dir
    assert a != b and c != _cfg("thinkprune", tmp_path).lapo.run_dir


def test_l1_knobs(tmp_path):
    exact, mx = _cfg("l1_exact", tmp_path), _cfg("l1_max", tmp_path)
    for cfg in (exact, mx):
        t = cfg.lapo.target_length
        assert t.enable and (t.min, t.max) == (100, 4000) and t.fixed is None
        assert cfg.lapo.l1.alpha == 3e-4 and cfg.lapo.l1.delta == 0.5
        assert cfg.data.lapo.target_length == t  # the dataset sees the same knobs
    assert exact.lapo.target_length.prompt_template == " Think for {n} tokens."
    assert mx.lapo.target_length.prompt_template == " Think for maximum {n} tokens."


def test_thinkprune_limit_follows_the_cap(tmp_path):
    cfg = _cfg("thinkprune", tmp_path, "data.max_response_length=3072")
    assert cfg.lapo.thinkprune.limit == 3072 and cfg.lapo.target_length.fixed == 3072
    assert cfg.actor_rollout_ref.rollout.response_length == 3072  # truncation at L, as ThinkPrune
    assert "{n} tokens" in cfg.lapo.target_length.prompt_template


def test_dapo_overlong_wiring(tmp_path):
    cfg = _cfg("dapo_overlong", tmp_path)
    kw = cfg.reward.reward_kwargs
    assert kw.max_resp_len == 4096 and kw.overlong_buffer_cfg.enable
    assert kw.overlong_buffer_cfg.len == 1024 and kw.overlong_buffer_cfg.penalty_factor == 1.0
    crf = cfg.reward.custom_reward_function
    assert crf.path == "pkg://lapo_verl.grading" and crf.name == "compute_score"
    assert crf.reward_kwargs.timeout_s == cfg.lapo.grading.timeout_s


def test_stage2_ablation_knobs(tmp_path):
    assert _cfg("lapo_stage2_before_think", tmp_path).lapo.stage2.plan_position == "before_think"
    implicit = _cfg("lapo_stage2_implicit", tmp_path)
    assert implicit.lapo.stage2.plan_in_prompt is False and implicit.reward.reward_manager.name == "lapo_stage2"
    rng = _cfg("lapo_stage2_range", tmp_path)  # the range plan is a stage-2 knob: same manager and agent loop
    assert rng.lapo.stage2.plan_range_width == 0.1 and "{lo}" in rng.lapo.stage2.plan_template
    assert rng.reward.reward_manager.name == "lapo_stage2"
    assert rng.actor_rollout_ref.rollout.agent.default_agent_loop == "lapo_plan_agent"
    loops = OmegaConf.load(rng.actor_rollout_ref.rollout.agent.agent_loop_config_path)
    assert {e.name for e in loops} == {"lapo_single_turn_agent", "lapo_plan_agent"}
    # stage-1 ablations are plain knobs: band percentiles
    band = _cfg("lapo_stage1", tmp_path, "lapo.stage1.band=[0.2,0.8]")
    assert list(band.lapo.stage1.band) == [0.2, 0.8]
