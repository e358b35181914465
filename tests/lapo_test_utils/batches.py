"""Hand-built verl batches (DataProto) for reward-manager tests."""

from __future__ import annotations

import numpy as np
import torch


def reward_batch(tokenizer, rows: list[dict], prompt_text: str = "Q: 2+2?") -> "DataProto":  # noqa: F821
    """One row per dict: ``response`` (text), ``gt``, ``pid``, optional ``record``, ``step``, ``uid``,
    ``sid`` and any extra non-tensor columns under ``extra``. Right-pads responses like verl does."""
    from verl import DataProto

    prompt_ids = tokenizer.encode(prompt_text, add_special_tokens=False)
    responses = [tokenizer.encode(r["response"], add_special_tokens=False) for r in rows]
    width = max(len(r) for r in responses)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    n = len(rows)
    prompts = torch.tensor([prompt_ids] * n)
    resp = torch.full((n, width), pad)
    mask = torch.zeros(n, len(prompt_ids) + width, dtype=torch.long)
    mask[:, : len(prompt_ids)] = 1
    for i, ids in enumerate(responses):
        resp[i, : len(ids)] = torch.tensor(ids)
        mask[i, len(prompt_ids): len(prompt_ids) + len(ids)] = 1
    data = DataProto.from_dict(tensors={
        "prompts": prompts, "responses": resp, "attention_mask": mask,
        "input_ids": torch.cat([prompts, resp], dim=1),
    })
    nt = {
        "data_source": np.array(["lapo/test"] * n, dtype=object),
        "reward_model": np.array([{"style": "rule", "ground_truth": r["gt"]} for r in rows], dtype=object),
        "extra_info": np.array([{"index": r["pid"]} for r in rows], dtype=object),
        "lapo_problem_id": np.array([r["pid"] for r in rows], dtype=object),
        "lapo_record": np.array([r.get("record", True) for r in rows], dtype=object),
        "uid": np.array([r.get("uid", r["pid"]) for r in rows], dtype=object),
        "global_steps": np.array([r.get("step", 1) for r in rows], dtype=object),
        "session_id": np.array([r.get("sid", i) for i, r in enumerate(rows)], dtype=object),
    }
    for key in {k for r in rows for k in r.get("extra", {})}:
        nt[key] = np.array([r.get("extra", {}).get(key) for r in rows], dtype=object)
    data.non_tensor_batch.update(nt)
    return data, [len(x) for x in responses]
