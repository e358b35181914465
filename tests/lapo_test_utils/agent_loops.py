"""Run one of a recipe's agent loops the way verl's agent-loop worker builds it, against a fake rollout server
that records the prompt ids it receives (verl's real SingleTurnAgentLoop machinery runs: continuous-token
builder, output assembly)."""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
from pathlib import Path

MESSAGES = [{"role": "user", "content": "What is 2+2? Let's think step by step and output the final answer within \\boxed{}."}]
DATA = Path(__file__).resolve().parents[1] / "data"


class RecordingServer:
    def __init__(self, reply_ids):
        self.prompts = []
        self.reply_ids = reply_ids

    async def generate(self, request_id, prompt_ids, sampling_params, **kwargs):
        from verl.workers.rollout.replica import TokenOutput

        self.prompts.append(list(prompt_ids))
        return TokenOutput(token_ids=self.reply_ids, log_probs=[-0.1] * len(self.reply_ids), stop_reason="completed")


def model_type_of(model_dir) -> str | None:
    """What verl's agent-loop worker passes as ``hf_model_type``: the root config.json's ``model_type``."""
    return json.loads((Path(model_dir) / "config.json").read_text()).get("model_type")


def with_template(model_dir, out_dir, template_file: str):
    """A copy of ``model_dir`` whose tokenizer uses ``tests/data/<template_file>`` as its chat template."""
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(model_dir, out)
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["chat_template"] = (DATA / template_file).read_text(encoding="utf-8")
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False))
    for extra in ("chat_template.jinja", "chat_template.json"):
        (out / extra).unlink(missing_ok=True)
    return out


@functools.lru_cache(maxsize=8)
def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def run_loop(model_dir, tmp_path, row_extra, *overrides, recipe="lapo_stage2", prompt_length=512,
             hf_model_type="config", messages=MESSAGES, chat_template_kwargs=None):
    """Compose ``recipe``, instantiate its default agent loop from its ``agent_loop_config_path`` (as verl's
    ``_run_agent_loop`` does) and run one row. ``hf_model_type="config"`` reads it from config.json."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf, open_dict
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from lapo_test_utils.verl_config import compose_recipe

    # the loops write nothing: a fixed output root keeps the composition cache warm across tests
    del tmp_path
    cfg = compose_recipe(recipe, "lapo.output_root=/nonexistent/lapo-runs", f"actor_rollout_ref.model.path={model_dir}",
                         f"actor_rollout_ref.rollout.prompt_length={prompt_length}",
                         "actor_rollout_ref.rollout.response_length=16", *overrides, minimal=False)
    OmegaConf.resolve(cfg)
    if chat_template_kwargs:
        with open_dict(cfg):
            cfg.data.apply_chat_template_kwargs = dict(chat_template_kwargs)
    agent = cfg.actor_rollout_ref.rollout.agent
    import verl.experimental.agent_loop.single_turn_agent_loop  # noqa: F401  (registers single_turn_agent)
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry

    entries = dict(_agent_loop_registry)  # verl's own loops, then the recipe's file, as verl merges them
    if agent.agent_loop_config_path:
        entries.update({e.name: e for e in OmegaConf.load(agent.agent_loop_config_path)})
    entry = entries[agent.default_agent_loop]
    tok = _tokenizer(str(model_dir))
    reply = tok.encode("4 </think> \\boxed{4}", add_special_tokens=False)
    server = RecordingServer(reply)
    model_type = model_type_of(model_dir) if hf_model_type == "config" else hf_model_type

    async def go():
        loop_obj = instantiate(entry, trainer_config=DictConfigWrap(cfg), server_manager=server, tokenizer=tok,
                               processor=None, hf_model_type=model_type, dataset_cls=RLHFDataset,
                               data_config=DictConfigWrap(cfg.data), tools=ToolListWrap([]))
        return loop_obj, await loop_obj.run({"temperature": 1.0}, raw_prompt=messages, **row_extra)

    loop_obj, out = asyncio.run(go())
    return tok, server, out, reply, loop_obj


def template_ids(tok, messages=MESSAGES, **kwargs) -> list[int]:
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, **kwargs)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)
