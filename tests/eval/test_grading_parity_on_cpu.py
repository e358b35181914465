"""One verdict for training and evaluation: the same responses graded by a LAPO reward manager (verl's
``run_single``, built in this process, no Ray) and by the eval runner's record builder agree, for a chat
prompt and for the paper prompt (which opens ``<think>``: prefilled reasoning)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from lapo_test_utils.batches import reward_batch
from lapo_test_utils.verl_config import compose_recipe
from lapo_verl.eval.generate import Completion, load_tokenizer, render_prompt
from lapo_verl.eval.runner import make_records
from lapo_verl.grading import prompt_tail_text

PROBLEM = {"id": "p1", "problem": "Solve the system x + y = 5, x - y = 1.", "answer": "x=3, y=2"}
RESPONSES = [
    "Adding gives 2x = 6. </think> So $\\boxed{x=3, y=2}$.",
    "Adding gives 2x = 6. </think> So $\\boxed{x=2, y=3}$.",  # names swapped: wrong
    "Adding gives 2x = 6. </think> So $\\boxed{y=2, x=3}$.",
    "Adding gives 2x = 6. </think> The answer is (3, 2).",  # unboxed statement, ordered pair
    "Adding gives 2x = 6. </think> The answer is (2, 3).",
    "Adding gives 2x = 6, so \\boxed{x=3, y=2}",  # reasoning never closed (no tags)
    "<think>Adding gives 2x = 6.</think>\n\\boxed{x = 3,\\ y = 2}",
    "<think>Adding gives 2x = 6, \\boxed{x=3, y=2}",  # opened, never closed
    "I am not sure.",
]


@pytest.fixture(scope="module")
def tok(tiny_bpe_dir):
    return load_tokenizer(tiny_bpe_dir)


@pytest.fixture(scope="module")
def manager(tiny_bpe_dir, tok, tmp_path_factory):
    from verl.trainer.ppo.reward import load_reward_manager

    root = tmp_path_factory.mktemp("parity")
    cfg = compose_recipe(
        "lapo_stage1", f"lapo.output_root={root}", f"actor_rollout_ref.model.path={tiny_bpe_dir}",
        "reward.num_workers=1", "data.max_response_length=4096", "actor_rollout_ref.rollout.response_length=4096",
        minimal=False,
    )
    OmegaConf.resolve(cfg)
    return load_reward_manager(cfg, tok)


@pytest.mark.parametrize("style", ["chat", "paper"])
def test_reward_manager_and_eval_runner_agree(style, tok, manager):
    from verl.utils.ray_utils import get_event_loop

    prompt_text, prompt_ids = render_prompt(tok, PROBLEM["problem"], style)
    assert prompt_text.rstrip().endswith("<think>") == (style == "paper")
    eos = tok.convert_ids_to_tokens(tok.eos_token_id)
    # training: verl hands the reward manager the response ids with the final EOS
    rows = [{"pid": "p1", "gt": PROBLEM["answer"], "response": r + eos, "record": False} for r in RESPONSES]
    data, _ = reward_batch(tok, rows, prompt_text=prompt_text)
    loop = get_event_loop()
    train = [loop.run_until_complete(manager.run_single(data[i : i + 1]))["reward_extra_info"] for i in range(len(rows))]
    # evaluation: the backend's decoded text (special tokens removed) and the rendered prompt
    comps = [Completion(text=r, token_ids=tok(r, add_special_tokens=False)["input_ids"] + [tok.eos_token_id],
                        finish_reason="stop") for r in RESPONSES]
    evals = make_records("parity", PROBLEM, 0, comps, prompt_tail=prompt_tail_text(tok, prompt_ids))

    got = [(t["acc"] == 1.0, t["grade_reason"]) for t in train]
    assert got == [(e["correct"], e["grade_reason"]) for e in evals]
    expected = [True, False, True, True, False, style == "chat", True, False, False]
    assert [c for c, _ in got] == expected
    if style == "paper":  # the prompt opened <think>: an unclosed response has no answer in both paths
        assert got[5] == (False, "no_answer")
