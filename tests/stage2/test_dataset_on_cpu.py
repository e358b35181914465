"""LapoDataset through verl's create_rl_dataset: id checks, train/val marking, stage-2 plan join."""

import json

import pandas as pd
import pytest
from omegaconf import OmegaConf

from lapo_test_utils.verl_config import compose_recipe
from lapo_verl.data.columns import PLAN_COLUMN, PLAN_IS_FALLBACK_COLUMN, PROBLEM_ID_COLUMN, RECORD_COLUMN
from lapo_verl.data.dataset import DataRowError
from lapo_verl.plans import PlansFileError


def write_parquet(path, n, *, with_ids=True, bad_row=None, problem_len=3):
    rows = []
    for i in range(n):
        row = {
            "data_source": "lapo/test",
            "prompt": [{"role": "user", "content": "What is " + " + ".join(["1"] * problem_len) + f"? ({i})"}],
            "reward_model": {"style": "rule", "ground_truth": str(problem_len)},
            "extra_info": {"index": f"p{i}" if with_ids else None, "split": "train"},
        }
        if with_ids:
            row[PROBLEM_ID_COLUMN] = f"p{i}"
        rows.append(row)
    if bad_row is not None:
        rows[bad_row][PROBLEM_ID_COLUMN] = None
        rows[bad_row]["extra_info"] = {"split": "train"}
    pd.DataFrame(rows).to_parquet(path)
    return str(path)


def make_dataset(tokenizer_dir, files, *overrides, stage=1, train_files=None, tmp=None):
    from transformers import AutoTokenizer
    from verl.trainer.ppo.utils import create_rl_dataset

    cfg = compose_recipe(
        f"lapo_stage{stage}", f"data.train_files={json.dumps(train_files or files)}",
        f"data.val_files={json.dumps(files)}", "data.filter_overlong_prompts_workers=1",
        f"+data.cache_dir={tmp}/cache", f"lapo.output_root={tmp}/runs", "data.max_prompt_length=256", *overrides,
    )
    OmegaConf.resolve(cfg)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    return create_rl_dataset(files, cfg.data, tok, None), cfg


def write_plans(path, plans, unsolved=()):
    path.write_text(json.dumps({"format": "lapo-plans/1", "plans": plans, "unsolved": list(unsolved)}))
    return str(path)


def test_stage1_rows_carry_id_and_record_flag(tiny_bpe_dir, tmp_path):
    train = write_parquet(tmp_path / "train.parquet", 4)
    ds, _ = make_dataset(tiny_bpe_dir, [train], tmp=tmp_path)
    row = ds[2]
    assert row[PROBLEM_ID_COLUMN] == "p2" and row["index"] == "p2" and row[RECORD_COLUMN] is True
    val, _ = make_dataset(tiny_bpe_dir, [train], tmp=tmp_path, train_files=[str(tmp_path / "other.parquet")])
    assert val[0][RECORD_COLUMN] is False  # not the training files: lengths are not recorded


def test_missing_id_names_file_row_and_field(tiny_bpe_dir, tmp_path):
    train = write_parquet(tmp_path / "train.parquet", 5, bad_row=3)
    with pytest.raises(DataRowError) as exc:
        make_dataset(tiny_bpe_dir, [train], tmp=tmp_path)
    msg = str(exc.value)
    assert "train.parquet" in msg and "row 3" in msg and PROBLEM_ID_COLUMN in msg and "prepare-data" in msg


def test_duplicate_ids_rejected(tiny_bpe_dir, tmp_path):
    path = tmp_path / "dup.parquet"
    write_parquet(path, 3)
    df = pd.read_parquet(path)
    df.loc[2, PROBLEM_ID_COLUMN] = "p0"
    df.to_parquet(path)
    with pytest.raises(DataRowError, match="repeats row 0"):
        make_dataset(tiny_bpe_dir, [str(path)], tmp=tmp_path)


def test_stage2_join_with_unsolved_and_missing(tiny_bpe_dir, tmp_path, capsys):
    train = write_parquet(tmp_path / "train.parquet", 5)
    plans = write_plans(tmp_path / "plans.json", {"p0": 120, "p1": 45, "p2": 300}, unsolved=["p3"])
    ds, cfg = make_dataset(tiny_bpe_dir, [train], f"lapo.plans_path={plans}", "data.max_response_length=512",
                           stage=2, tmp=tmp_path)
    got = {ds[i][PROBLEM_ID_COLUMN]: (ds[i][PLAN_COLUMN], ds[i][PLAN_IS_FALLBACK_COLUMN]) for i in range(len(ds))}
    assert got == {"p0": (120, False), "p1": (45, False), "p2": (300, False), "p3": (512, True), "p4": (512, True)}
    out = capsys.readouterr().out
    assert "3/5 rows planned, 1 unsolved, 1 never visited" in out
    assert ds.plan_report == {"rows": 5, "planned": 3, "unsolved": 1, "missing": 1, "dropped": 0}


def test_stage2_drop_policy(tiny_bpe_dir, tmp_path):
    train = write_parquet(tmp_path / "train.parquet", 4)
    plans = write_plans(tmp_path / "plans.json", {"p0": 120, "p1": 45}, unsolved=["p2"])
    ds, _ = make_dataset(tiny_bpe_dir, [train], f"lapo.plans_path={plans}", "lapo.stage2.unsolved_policy=drop",
                         stage=2, tmp=tmp_path)
    assert sorted(ds[i][PROBLEM_ID_COLUMN] for i in range(len(ds))) == ["p0", "p1"]


def test_stage2_validation_rows_get_no_plan_by_default(tiny_bpe_dir, tmp_path):
    train = write_parquet(tmp_path / "train.parquet", 3)
    val = write_parquet(tmp_path / "val.parquet", 2)
    plans = write_plans(tmp_path / "plans.json", {"p0": 120, "p1": 45, "p2": 7})
    ds, _ = make_dataset(tiny_bpe_dir, [val], f"lapo.plans_path={plans}", stage=2, tmp=tmp_path, train_files=[train])
    assert PLAN_COLUMN not in ds[0]
    ds, _ = make_dataset(tiny_bpe_dir, [val], f"lapo.plans_path={plans}", "lapo.stage2.val_with_plan=true",
                         stage=2, tmp=tmp_path, train_files=[train])
    assert ds[0][PLAN_COLUMN] == 120


def test_stage2_start_up_errors(tiny_bpe_dir, tmp_path):
    train = write_parquet(tmp_path / "train.parquet", 3)
    with pytest.raises(PlansFileError, match="not found"):
        make_dataset(tiny_bpe_dir, [train], f"lapo.plans_path={tmp_path}/none.json", stage=2, tmp=tmp_path)
    foreign = write_plans(tmp_path / "foreign.json", {"p0": 10, "zz9": 20})
    with pytest.raises(DataRowError, match="match no row"):
        make_dataset(tiny_bpe_dir, [train], f"lapo.plans_path={foreign}", stage=2, tmp=tmp_path)
    ds, _ = make_dataset(tiny_bpe_dir, [train], f"lapo.plans_path={foreign}",
                         "lapo.stage2.allow_unknown_plan_ids=true", stage=2, tmp=tmp_path)
    assert len(ds) == 3
    partial = write_plans(tmp_path / "partial.json", {"p0": 10})
    with pytest.raises(DataRowError, match="never visited it"):
        make_dataset(tiny_bpe_dir, [train], f"lapo.plans_path={partial}", "lapo.stage2.missing_policy=error",
                     stage=2, tmp=tmp_path)
    negative = tmp_path / "neg.json"
    negative.write_text('{"format": "lapo-plans/1", "plans": {"p0": -5}}')
    with pytest.raises(PlansFileError, match="positive integer"):
        make_dataset(tiny_bpe_dir, [train], f"lapo.plans_path={negative}", stage=2, tmp=tmp_path)


def test_stage2_filters_prompts_that_only_overflow_with_the_plan(tiny_bpe_dir, tmp_path):
    """A prompt that fits max_prompt_length alone but not with the plan sentence is filtered out."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bpe_dir)
    rows = []
    for i, k in enumerate([2, 40]):  # short problem, long problem
        rows.append({"data_source": "t", "prompt": [{"role": "user", "content": "What is " + " + ".join(["1"] * k)}],
                     "reward_model": {"ground_truth": str(k)}, "extra_info": {"index": f"p{i}"},
                     PROBLEM_ID_COLUMN: f"p{i}"})
    path = tmp_path / "t.parquet"
    pd.DataFrame(rows).to_parquet(path)
    long_len = len(tok.apply_chat_template(rows[1]["prompt"], add_generation_prompt=True, tokenize=True)["input_ids"])
    plans = write_plans(tmp_path / "plans.json", {"p0": 100, "p1": 100})
    stage1, _ = make_dataset(tiny_bpe_dir, [str(path)], f"data.max_prompt_length={long_len}", tmp=tmp_path)
    assert len(stage1) == 2  # fits without the plan
    stage2, _ = make_dataset(tiny_bpe_dir, [str(path)], f"data.max_prompt_length={long_len}",
                             f"lapo.plans_path={plans}", stage=2, tmp=tmp_path)
    assert [stage2[i][PROBLEM_ID_COLUMN] for i in range(len(stage2))] == ["p0"]


def test_update_plans_without_records_fails_at_start_up(tiny_bpe_dir, tmp_path):
    """Eq. 8 plans are computed from the length records: turning them off with update_plans=true is refused."""
    from lapo_verl import config as lapo_config

    train = write_parquet(tmp_path / "train.parquet", 4)
    plans = write_plans(tmp_path / "plans.json", {f"p{i}": 100 for i in range(4)})
    with pytest.raises(ValueError, match=r"update_plans=true \(paper Eq. 8\).*lapo.records.enable=true"):
        make_dataset(tiny_bpe_dir, [train], f"lapo.plans_path={plans}", "lapo.stage2.update_plans=true",
                     "lapo.records.enable=false", stage=2, tmp=tmp_path)
    with pytest.raises(ValueError, match="records"):  # the typed settings refuse it wherever they are built
        lapo_config.LapoConfig.from_section({"stage": 2, "stage2": {"update_plans": True},
                                             "records": {"enable": False}})
    typed = lapo_config.LapoConfig.from_section
    assert typed({"stage": 2, "stage2": {"update_plans": True}, "records": {"dir": "/r"}}).update_plans_dir == "/r"
    assert typed({"stage": 2, "stage2": {"update_plans": False}}).update_plans_dir is None
