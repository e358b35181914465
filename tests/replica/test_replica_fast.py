"""Fast checks of the CPU replica's pieces: generator determinism, tokenizer round trip (plan sentence
included), warm-up traces graded by the project's grader, and the metrics maths."""

from __future__ import annotations

import random

import pytest

from lapo_verl.replica import task
from lapo_verl.replica.evaluate import quantile, ranks, spearman, summarize


def test_generator_is_bit_for_bit_and_disjoint():
    a, b = task.eval_problems(), task.eval_problems()
    assert a == b and task.digest(a) == task.digest(b)
    # frozen: the held-out and training sets of docs/replica-design.md (version 4; version 3's were 152cdd48... and
    # 3c3ec27f..., version 2's held-out set 007b3a81...)
    assert task.digest(a) == "92eec283ed01d4b635f40320e021d4b71a738f6820f3f09641f01ae7f4fe7610"
    assert task.digest(task.train_problems()) == "a5579319c5f1b493f7c5abba41d56ff5fd6ae6d23a79edac07be065764a6464c"
    assert len(a) == 600 and {p.level for p in a} == set(task.LEVELS)
    assert all(sum(p.level == lv for p in a) == 100 for lv in task.LEVELS)
    train = task.train_problems(1200)
    assert not {p.text for p in a} & {p.text for p in train}
    assert len({p.text for p in a}) == 600 and len({p.text for p in train}) == 1200
    assert task.train_problems(10) == train[:10]  # a smaller training set is a prefix of a larger one


def test_problem_semantics():
    p = task.Problem("x", 3, 7, (("-", 5), ("+", 3), ("+", 1)))
    assert p.text == "Compute 7-5+3+1." and p.answer == 6
    for q in task.train_problems(300):
        vals = task.chain_values(q.start, q.ops)
        assert len(vals) == q.level and all(0 <= v <= task.MAX_VALUE for v in vals)


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from lapo_verl.replica.tokenizer import build_tokenizer

    import json

    from transformers import AutoTokenizer

    d = tmp_path_factory.mktemp("tok")
    build_tokenizer(d)
    # verl loads it from a qwen2 model directory, where transformers always builds a Qwen2Tokenizer
    (d / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    tok = AutoTokenizer.from_pretrained(str(d))
    assert type(tok).__name__ == "Qwen2Tokenizer"
    return tok


def test_tokenizer_round_trip_and_plan_sentence(tok):
    from lapo_verl.prompts import build_messages, generation_prompt_opens_think, render_plan
    from lapo_verl.verl_ext.agent_loop import prompt_with_plan

    assert len(tok) < 256
    assert tok.encode("\n", add_special_tokens=False) != []  # verl's Qwen token builder needs it
    assert generation_prompt_opens_think(tok)
    text = tok.apply_chat_template(build_messages("Compute 17+5-3."), add_generation_prompt=True, tokenize=False)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text and text.endswith("<|im_start|>assistant\n<think>\n")
    with_plan = prompt_with_plan(text, render_plan(137))
    add = with_plan[len(text):]
    assert with_plan.startswith(text) and add == "I will answer the question with 137 tokens.\n"
    plan_ids = tok.encode(add, add_special_tokens=False)
    assert tok.decode(plan_ids) == add
    pieces = tok.convert_ids_to_tokens(plan_ids)
    assert pieces[6:10] == ["Ġ", "1", "3", "7"]  # digits are single tokens
    assert {"Ġwill", "Ġanswer", "Ġquestion", "Ġtokens"} <= set(pieces)  # words are single tokens
    odd = "Zebras think: 12*3=36?"
    assert tok.decode(tok.encode(odd, add_special_tokens=False)) == odd


def test_traces_graded_by_project_grader(tok):
    from lapo_verl.grading import grade

    rng = random.Random(0)
    checks_seen, right, wrong = set(), 0, 0
    for p in task.train_problems(120):
        resp, checks = task.trace(p, rng)
        checks_seen.add(checks)
        g = grade(resp + "<|im_end|>", str(p.answer), reasoning_prefilled=True)
        last = task.chain_values(p.start, p.ops)[-1] if checks else None
        if checks:
            assert g.correct and last == p.answer  # a re-check repairs any slip
        right += g.correct
        wrong += not g.correct
        assert tok.decode(tok.encode(resp, add_special_tokens=False)) == resp
    assert {0, 1, 2, 3} <= checks_seen <= set(range(task.MAX_CHECKS + 1)) and wrong > 0 and right > wrong
    # no </think>: no answer, as verl's reward manager grades a prefilled reasoning
    assert not grade("+5=12\n\\boxed{12}", "12", reasoning_prefilled=True).correct


def test_hasty_pass_slips_only_on_large_operands_and_checks_are_skewed():
    rng = random.Random(1)
    p = task.Problem("x", 4, 2, (("+", 6), ("-", 3), ("+", 1), ("-", 5)))
    firsts = [task.hasty_values(rng, p.start, p.ops) for _ in range(2000)]
    good = task.chain_values(p.start, p.ops)
    assert all(f[1:] == [v if f[0] == good[0] else (v + 1) % 10 for v in good[1:]] for f in firsts)  # propagates
    wrong = sum(f[0] != good[0] for f in firsts) / len(firsts)
    assert 0.45 < wrong < 0.55 and all(f[0] in (good[0], good[0] + 1) for f in firsts)
    small = task.Problem("y", 2, 5, (("+", 1), ("-", 2)))
    assert all(task.hasty_values(rng, small.start, small.ops) == [6, 4] for _ in range(200))
    ks = [task.draw_checks(rng) for _ in range(20000)]
    assert abs(ks.count(0) / len(ks) - 0.4) < 0.02 and max(ks) == task.MAX_CHECKS
    assert sorted(ks)[len(ks) // 2] == 1 and sum(ks) / len(ks) > 1.3  # right-skewed: mean above median


def test_rank_maths():
    assert ranks([3, 1, 2]) == [3.0, 1.0, 2.0]
    assert ranks([1, 1, 1]) == [2.0, 2.0, 2.0]
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    # hand-computed: ranks x = [1, 2.5, 2.5, 4], y = [1, 2, 3, 4] -> r = 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / (4.5 * 5) ** 0.5)
    assert quantile([0, 10], 0.25) == 2.5 and quantile([], 0.5) is None


def test_summary_adherence():
    recs = [dict(level=1, correct=True, n_tokens=11, plan=10, stated_plan=None),
            dict(level=2, correct=True, n_tokens=15, plan=20, stated_plan=20),
            dict(level=2, correct=False, n_tokens=40, plan=20, stated_plan=None)]
    s = summarize(recs)
    assert s["adherence"]["median"] == pytest.approx(0.25)
    assert s["adherence"]["within_10pct"] == pytest.approx(1 / 3)
    assert s["per_level"]["2"]["accuracy"] == 50.0
    assert "stated_plan_fraction" not in s  # every record had a plan given


@pytest.mark.parametrize("id_key", ["problem_id", "pid"])  # "pid": data directories of earlier versions
def test_level_plans_reads_problem_ids_of_either_spelling(tmp_path, id_key):
    import json

    from lapo_verl.plans import write_plans
    from lapo_verl.replica.evaluate import level_plans

    train = tmp_path / "train.jsonl"
    rows = [("a", 1), ("b", 1), ("c", 2), ("d", 2)]
    train.write_text("".join(json.dumps({id_key: pid, "problem": "x", "answer": "1", "level": lv}) + "\n"
                             for pid, lv in rows))
    plans = tmp_path / "plans.json"
    write_plans({"format": "lapo-plans/1", "plans": {"a": 10, "b": 21, "c": 30}, "unsolved": ["d"]}, str(plans))
    assert level_plans(plans, train, unsolved_length=100) == {1: 16, 2: 65}
