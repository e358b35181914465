"""The L1 / ThinkPrune target length reaches the prompt through verl's create_rl_dataset (LapoDataset)."""

import json

import pandas as pd
from omegaconf import OmegaConf

from lapo_test_utils.verl_config import compose_recipe
from lapo_verl.data.columns import TARGET_COLUMN
from lapo_verl.data.dataset import target_length_for

SUFFIX = "Let's think step by step and output the final answer within \\boxed{}."


def _parquet(path, n):
    pd.DataFrame([{
        "data_source": "lapo/test",
        "prompt": [{"role": "user", "content": f"What is {i} + 1? {SUFFIX}"}],
        "reward_model": {"style": "rule", "ground_truth": str(i + 1)},
        "extra_info": {"index": f"q{i}"},
        "lapo_problem_id": f"q{i}",
    } for i in range(n)]).to_parquet(path)
    return str(path)


def _dataset(model_dir, tmp_path, recipe, *overrides):
    from transformers import AutoTokenizer
    from verl.trainer.ppo.utils import create_rl_dataset

    files = [_parquet(tmp_path / "train.parquet", 6)]
    cfg = compose_recipe(recipe, f"data.train_files={json.dumps(files)}", f"data.val_files={json.dumps(files)}",
                         "data.filter_overlong_prompts_workers=1", f"+data.cache_dir={tmp_path}/cache",
                         f"lapo.output_root={tmp_path}/runs", "data.max_prompt_length=256", *overrides)
    OmegaConf.resolve(cfg)
    return create_rl_dataset(files, cfg.data, AutoTokenizer.from_pretrained(model_dir), None), cfg


def test_l1_exact_states_each_problems_target(tiny_bpe_dir, tmp_path):
    ds, cfg = _dataset(tiny_bpe_dir, tmp_path, "l1_exact")
    targets = []
    for i in range(len(ds)):
        row = ds[i]
        target = row[TARGET_COLUMN]
        assert target == target_length_for(f"q{i}", 100, 4000, 0)  # deterministic per problem id and seed
        assert 100 <= target <= 4000
        content = row["raw_prompt"][-1]["content"]
        assert content == f"What is {i} + 1? {SUFFIX} Think for {target} tokens."  # L1's prompt
        targets.append(target)
    assert len(set(targets)) > 1  # sampled per prompt, not one global value
    again, _ = _dataset(tiny_bpe_dir, tmp_path, "l1_exact")
    assert [again[i][TARGET_COLUMN] for i in range(len(again))] == targets  # stable across restarts
    other_seed, _ = _dataset(tiny_bpe_dir, tmp_path, "l1_exact", "lapo.target_length.seed=1")
    assert [other_seed[i][TARGET_COLUMN] for i in range(len(other_seed))] != targets


def test_l1_max_and_thinkprune_prompts(tiny_bpe_dir, tmp_path):
    ds, _ = _dataset(tiny_bpe_dir, tmp_path, "l1_max")
    row = ds[0]
    assert row["raw_prompt"][-1]["content"].endswith(f"{SUFFIX} Think for maximum {row[TARGET_COLUMN]} tokens.")
    tp, _ = _dataset(tiny_bpe_dir, tmp_path, "thinkprune", "data.max_response_length=3072")
    assert {tp[i][TARGET_COLUMN] for i in range(len(tp))} == {3072}
    assert tp[0]["raw_prompt"][-1]["content"].endswith(" The output of the assistant should be within 3072 tokens.")
