"""Typed LAPO settings (lapo_verl/config.py): defaults stated once and shown by the recipes, validation with
the full key's name, a clear error when the section is missing, and the preflight check before Ray."""

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lapo_test_utils.verl_config import compose_recipe
from lapo_verl import config as lapo_config
from lapo_verl.config import LapoConfig, LapoConfigError

RECIPES = Path(__file__).resolve().parents[1] / "hydra_conf" / "recipe"


def _leaves(node, prefix):
    """``(dotted key, value)`` of every leaf of a YAML mapping that is a value, not an interpolation."""
    for key in node:
        full = f"{prefix}.{key}"
        if OmegaConf.is_interpolation(node, key):
            continue
        value = node[key]
        if OmegaConf.is_dict(value):
            yield from _leaves(value, full)
        else:
            yield full, OmegaConf.to_container(value) if OmegaConf.is_list(value) else value


def _default(dotted):
    node = LapoConfig()
    for part in dotted.split(".")[1:]:
        node = getattr(node, part)
    return node


def test_paper_grpo_yaml_shows_the_dataclass_defaults():
    """Every value paper_grpo.yaml gives in ``lapo:`` equals the dataclass default, and every knob of the core
    sections is shown there (torchtune style: the default config lists every knob with its default)."""
    lapo = OmegaConf.load(RECIPES / "paper_grpo.yaml").lapo
    leaves = dict(_leaves(lapo, "lapo"))
    assert len(leaves) > 20
    for key, value in leaves.items():
        default = _default(key)
        assert (list(default) if isinstance(default, tuple) else default) == value, key
    for section in ("records", "grading", "stage1", "stage2"):
        for f in dataclasses.fields(getattr(LapoConfig(), section)):
            if f.name != "_target_":
                assert f.name in lapo[section], f"lapo.{section}.{f.name} missing from paper_grpo.yaml"


@pytest.mark.parametrize("recipe,section", [("l1_exact", "l1"), ("l1_max", "l1"), ("dapo_overlong", "dapo_overlong"),
                                            ("l1_exact", "target_length"), ("l1_max", "target_length")])
def test_baseline_recipes_show_the_dataclass_defaults(recipe, section):
    lapo = OmegaConf.load(RECIPES / f"{recipe}.yaml").lapo
    recipe_choices = {"lapo.target_length.enable", "lapo.target_length.prompt_template"}  # what the recipe is
    for key, value in _leaves(lapo[section], f"lapo.{section}"):
        if key not in recipe_choices:
            assert _default(key) == value, key


def test_range_recipe_sets_the_stage2_knob():
    """Every recipe validates in tests/test_recipe_completeness.py; the range ablation is one stage-2 knob."""
    rng = LapoConfig.from_section(compose_recipe("lapo_stage2_range").lapo)
    assert rng.stage2.plan_range_width == 0.1 and "{lo}" in rng.stage2.plan_template
    assert LapoConfig.from_section(compose_recipe("lapo_stage2").lapo).stage2.plan_range_width == 0.0


def test_typed_values_and_frozen():
    cfg = LapoConfig.from_section({"stage": 2, "stage1": {"band": [0.2, 0.8], "falloff": 50},
                                   "stage2": {"sigma": 60, "unsolved_length": 4096.0}})
    assert cfg.stage1.band == (0.2, 0.8) and cfg.stage1.falloff == 50.0 and isinstance(cfg.stage1.falloff, float)
    assert cfg.stage2.params().sigma == 60.0 and cfg.stage2.unsolved_length == 4096
    assert cfg.stage2.beta == 0.8 and cfg["stage2"]["beta"] == 0.8  # defaults fill in; dict-like as verl's configs
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.stage2.sigma = 1.0
    assert LapoConfig.from_section(cfg) is cfg
    assert LapoConfig.from_section({"experiment": 2024, "tag": 1}).experiment == "2024"  # Hydra's numbers as names


@pytest.mark.parametrize("section,message", [
    ({"stage2": {"sigmaa": 100}}, r"lapo\.stage2\.sigmaa: unknown key \(did you mean lapo\.stage2\.sigma\?"),
    ({"stage3": {}}, r"lapo\.stage3: unknown key .*known keys of lapo: stage, "),
    ({"stage2_range": {"width": 0.1}}, r"lapo\.stage2_range: unknown key \(the range plan is a stage-2 knob now: "
                                       r"lapo\.stage2\.plan_range_width"),
    ({"grading": {"timeout": 3}}, r"lapo\.grading\.timeout: unknown key \(did you mean lapo\.grading\.timeout_s\?"),
])
def test_unknown_keys_are_refused_with_their_full_name(section, message):
    with pytest.raises(LapoConfigError, match=message):
        LapoConfig.from_section(section)


@pytest.mark.parametrize("dotted,value,message", [
    ("stage", 3, r"lapo\.stage: got 3; allowed: 1 \(discovery\) \| 2"),
    ("stage2.sigma", 0, r"lapo\.stage2\.sigma must be a positive finite number, got 0"),
    ("stage2.sigma", -120, r"lapo\.stage2\.sigma must be a positive"),
    ("stage2.beta", -0.1, r"lapo\.stage2\.beta must be a finite number >= 0"),
    ("stage2.plan_in_prompt", "yes", r"lapo\.stage2\.plan_in_prompt: expected true/false, got 'yes'"),
    ("stage2.plan_position", "after_think", r"lapo\.stage2\.plan_position: got 'after_think'; allowed: in_think \| "
                                            r"before_think"),
    ("stage2.unsolved_policy", "skip", r"lapo\.stage2\.unsolved_policy: got 'skip'; allowed: max_length \| drop"),
    ("stage2.missing_policy", "ignore", r"lapo\.stage2\.missing_policy: got 'ignore'; allowed: unsolved \| error"),
    ("stage2.plan_template", "no number", r"lapo\.stage2\.plan_template must contain '\{n\}'"),
    ("stage2.plan_range_width", 1.0, r"lapo\.stage2\.plan_range_width must be a number in \[0, 1\)"),
    ("stage2.plan_range_width", 0.1, r"lapo\.stage2\.plan_template must contain '\{lo\}' and '\{hi\}' when "
                                     r"lapo\.stage2\.plan_range_width=0\.1"),
    ("stage2.unsolved_length", 0, r"lapo\.stage2\.unsolved_length: got 0"),
    ("stage1.band", [0.8, 0.2], r"lapo\.stage1\.band must satisfy 0 <= low <= high <= 1"),
    ("stage1.band", [0.3], r"lapo\.stage1\.band: expected a list of 2 numbers"),
    ("stage1.alpha", "0.7", r"lapo\.stage1\.alpha: expected a number, got '0.7'"),
    ("stage1.falloff", 0, r"lapo\.stage1\.falloff must be a positive"),
    ("stage1.bonus_rule", "median", r"lapo\.stage1\.bonus_rule must be one of \('paper', 'authors_code'\)"),
    ("grading.timeout_s", 0, r"lapo\.grading\.timeout_s: got 0.0; allowed: a positive number of seconds"),
    ("target_length.min", 0, r"lapo\.target_length\.min/max: got \(0, 4000\); allowed: 0 < min <= max"),
    ("target_length.prompt_template", " Think.", r"lapo\.target_length\.prompt_template: .*containing '\{n\}'"),
    ("l1.alpha", -1, r"lapo\.l1\.alpha: got -1.0"),
    ("thinkprune.limit", 0, r"lapo\.thinkprune\.limit: got 0"),
    ("dapo_overlong.buffer", 1.5, r"lapo\.dapo_overlong\.buffer: expected an integer, got 1.5"),
    ("records", 5, r"lapo\.records: expected a mapping of settings, got 5"),
])
def test_unsupported_values_are_refused_with_their_full_name(dotted, value, message):
    section: dict = {}
    node = section
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    with pytest.raises(LapoConfigError, match=message):
        LapoConfig.from_section(section)


def test_cross_section_rule_eq8_needs_records():
    with pytest.raises(LapoConfigError, match=r"update_plans=true \(paper Eq. 8\).*lapo\.records\.dir"):
        LapoConfig.from_section({"stage": 2, "stage2": {"update_plans": True}, "records": {"dir": None}})
    # in stage 1 the knob has nothing to act on and is not an error (the recipes share one section)
    assert LapoConfig.from_section({"stage": 1, "stage2": {"update_plans": True}}).update_plans_dir is None


def test_missing_section_is_a_clear_error():
    with pytest.raises(KeyError, match=r"LAPO settings not found in algorithm \(algorithm.lapo\): add \+recipe=lapo_stage1"):
        lapo_config.load(OmegaConf.create({"adv_estimator": "lapo_stage1"}), where="algorithm (algorithm.lapo)")
    with pytest.raises(KeyError, match="LAPO settings not found"):
        lapo_config.load(None)
    from lapo_verl.verl_ext.checkpoint import LapoCheckpointCallback

    with pytest.raises(KeyError, match="LapoCheckpointCallback"):
        LapoCheckpointCallback(OmegaConf.create({"trainer": {}}))


def test_load_builds_once_per_section_object():
    cfg = OmegaConf.create({"lapo": {"stage": 1, "stage1": {"alpha": 0.5}}})
    first = lapo_config.load(cfg)
    assert lapo_config.load(cfg) is first and first.stage1.alpha == 0.5
    assert lapo_config.load(OmegaConf.create({"lapo": {"stage": 2}})).stage == 2  # another object: built anew


def test_preflight_validates_settings_before_ray(capsys):
    from lapo_verl.preflight import LapoSettingsInvalid, check_settings

    check_settings(compose_recipe("lapo_stage2", "lapo.output_root=/nonexistent/lapo-runs"))
    with pytest.raises(LapoSettingsInvalid) as err:
        check_settings(compose_recipe("lapo_stage2", "lapo.stage2.sigma=-1"))
    assert err.value.code == 2 and "lapo.stage2.sigma must be a positive finite number" in str(err.value)
    assert "lapo.stage2.sigma" in capsys.readouterr().err
    with pytest.raises(LapoSettingsInvalid, match=r"lapo\.stage2\.sigmma: unknown key"):
        check_settings(compose_recipe("lapo_stage1", "+lapo.stage2.sigmma=60"))
    check_settings(OmegaConf.create({"data": {}}))  # not a LAPO run: left to verl


def test_settings_tag_of_existing_recipes_unchanged_by_the_range_knob():
    """The digest that names run directories records the range width under its earlier section name and 0 as
    absent, so every recipe that existed before the knob keeps its run directory."""
    from lapo_verl.resources import TAG_ALIASES, TAG_KEYS, settings_tag

    cfg = compose_recipe("lapo_stage2", "lapo.output_root=/nonexistent/lapo-runs")
    old_keys = [("lapo.stage2_range" if k in TAG_ALIASES else k) for k in TAG_KEYS]
    picked = {}
    for key in old_keys:
        node = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        picked[key] = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    old = hashlib.sha1(json.dumps(picked, sort_keys=True, default=str).encode()).hexdigest()[:8]
    assert settings_tag(_root_=cfg) == old
    wide = compose_recipe("lapo_stage2", "lapo.output_root=/nonexistent/lapo-runs", "lapo.stage2.plan_range_width=0.1")
    assert settings_tag(_root_=wide) != old
