"""The ``hf`` rollout: server generation (ids, log-probs, limits), weight loading, and the Ray round trip
replica -> server actor <- adapter weight sync."""

from __future__ import annotations

import asyncio
import os

import pytest


@pytest.fixture(scope="module")
def configs(tiny_bpe_dir):
    from verl.workers.config import HFModelConfig, RolloutConfig

    rollout = RolloutConfig(
        name="hf", mode="async", prompt_length=256, response_length=8, dtype="float32", tensor_model_parallel_size=1
    )
    model = HFModelConfig(path=str(tiny_bpe_dir))
    return rollout, model


@pytest.fixture(scope="module")
def server(configs):
    from lapo_verl.cpu_backend.rollout import HFRolloutServer

    return HFRolloutServer(*configs, replica_rank=0)


def _run(coro):
    return asyncio.run(coro)


def _prompt(model_config):
    tok = model_config.tokenizer
    return tok.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], add_generation_prompt=True,
                                   tokenize=True, return_dict=True)["input_ids"]  # fmt: skip


def test_greedy_is_deterministic_and_logprobs_match_a_forward_pass(server, configs):
    import torch

    prompt = _prompt(configs[1])
    params = {"temperature": 0, "top_p": 1.0, "top_k": -1, "logprobs": True, "ignore_eos": True}
    out1 = _run(server.generate("r1", prompt_ids=prompt, sampling_params=dict(params)))
    out2 = _run(server.generate("r2", prompt_ids=prompt, sampling_params=dict(params)))
    assert out1.token_ids == out2.token_ids and len(out1.token_ids) == 8  # response_length
    assert out1.stop_reason == "completed" and "global_steps" in out1.extra_fields
    with torch.no_grad():
        logits = server.model(torch.tensor([prompt + out1.token_ids])).logits[0].float()
    ref = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
    ref = ref.gather(1, torch.tensor(out1.token_ids)[:, None])[:, 0]
    assert torch.allclose(torch.tensor(out1.log_probs), ref, atol=1e-4)
    assert out1.token_ids == logits[len(prompt) - 1 : -1].argmax(-1).tolist()


def test_sampling_respects_limits_temperature_and_logprob_flag(server, configs):
    import torch

    prompt = _prompt(configs[1])
    out = _run(server.generate("s", prompt_ids=prompt, sampling_params={"temperature": 0.7, "top_k": 5,
                                                                        "top_p": 0.9, "max_tokens": 3}))  # fmt: skip
    assert 1 <= len(out.token_ids) <= 3 and out.log_probs is None
    out = _run(server.generate("t", prompt_ids=prompt, sampling_params={"temperature": 0.5, "logprobs": True,
                                                                        "ignore_eos": True}))  # fmt: skip
    with torch.no_grad():
        logits = server.model(torch.tensor([prompt + out.token_ids])).logits[0].float()
    ref = torch.log_softmax(logits[len(prompt) - 1 : -1] / 0.5, dim=-1)  # the actor's temperature-scaled view
    ref = ref.gather(1, torch.tensor(out.token_ids)[:, None])[:, 0]
    assert torch.allclose(torch.tensor(out.log_probs), ref, atol=1e-4)
    assert all(0 <= t < len(configs[1].tokenizer) for t in out.token_ids)


def test_stops_at_eos(server, configs):
    import torch

    prompt = _prompt(configs[1])
    eos = server.eos_token_ids[0]
    with torch.no_grad():
        bias = torch.zeros(server.model.config.vocab_size)
        bias[eos] = 1e4
        hook = server.model.lm_head.register_forward_hook(lambda _m, _i, out: out + bias)
    try:
        out = _run(server.generate("e", prompt_ids=prompt, sampling_params={"temperature": 1.0}))
    finally:
        hook.remove()
    assert out.token_ids == [eos]


def test_prompt_longer_than_context_is_rejected(server):
    with pytest.raises(ValueError, match="max_model_len"):
        server._max_new_tokens(server.max_model_len, {})


def test_update_weights_loads_tensors_and_rejects_unknown_names(server):
    import torch

    before = _run(server.get_weight_info())
    norm = server.model.model.norm.weight
    saved = norm.detach().clone()
    try:
        stats = _run(server.update_weights({"model.norm.weight": torch.full_like(norm, 2.0)}, global_steps=7))
        assert stats["loaded"] == 1 and stats["version"] == before["version"] + 1
        assert torch.all(server.model.model.norm.weight == 2.0)
        assert _run(server.get_weight_info())["global_steps"] == 7
        with pytest.raises(KeyError, match="unknown parameter"):
            _run(server.update_weights({"not.a.param": torch.zeros(1)}))
    finally:
        _run(server.update_weights({"model.norm.weight": saved}))


def test_replica_and_adapter_sync_weights_through_ray(ray_session, configs, tiny_bpe_dir, monkeypatch):
    import torch
    from omegaconf import OmegaConf
    from transformers import AutoModelForCausalLM

    from lapo_verl.cpu_backend.rollout import HFReplica, HFServerAdapter

    rollout_config, _ = configs
    model_dict = OmegaConf.create({"path": str(tiny_bpe_dir)})  # what LLMServerManager passes
    replica = HFReplica(replica_rank=0, config=rollout_config, model_config=model_dict, gpus_per_node=1)
    _run(replica.launch_servers())
    try:
        handle = replica.server_handle
        assert replica.server_address == "hf://hf_server_0_0"
        monkeypatch.setenv("RANK", "0")
        adapter = HFServerAdapter(rollout_config, configs[1], device_mesh=None)
        assert adapter.is_leader and adapter.replica_rank == 0
        model = AutoModelForCausalLM.from_pretrained(str(tiny_bpe_dir))
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.5)
        before = ray_session.get(handle.get_weight_info.remote())
        _run(adapter.update_weights(((n, t) for n, t in model.state_dict().items()), global_steps=3))
        after = ray_session.get(handle.get_weight_info.remote())
        assert after["version"] == before["version"] + 1 and after["global_steps"] == 3
        assert after["checksum"] != pytest.approx(before["checksum"])
        out = ray_session.get(
            handle.generate.remote(request_id="x", prompt_ids=[1, 2, 3], sampling_params={"temperature": 0, "max_tokens": 2})
        )
        assert 1 <= len(out.token_ids) <= 2
        # lifecycle calls the trainer makes on replicas are accepted (nothing to free on CPU)
        _run(replica.sleep())
        _run(replica.wake_up())
        _run(replica.abort_all_requests())
        _run(replica.resume_generation())
    finally:
        ray_session.kill(replica.server_handle)


def test_non_leader_ranks_drain_the_generator_without_sending(configs, monkeypatch):
    from lapo_verl.cpu_backend.rollout import HFServerAdapter

    monkeypatch.setenv("RANK", "0")
    adapter = HFServerAdapter(configs[0], configs[1], device_mesh=None)
    adapter.is_leader = False  # as for ranks 1.. of a replica with tensor_model_parallel_size > 1
    consumed = []

    def gen():
        for i in range(3):
            consumed.append(i)
            yield f"w{i}", None

    _run(adapter.update_weights(gen()))
    assert consumed == [0, 1, 2] and adapter.server_handle is None


def test_concurrent_requests_are_batched_and_match_one_at_a_time(configs):
    """Requests that arrive together are sampled in one batch (left padding, per-row budgets and EOS); greedy
    results and log-probs equal those of the same prompts generated alone."""
    import torch

    from lapo_verl.cpu_backend.rollout import HFRolloutServer

    server = HFRolloutServer(*configs, replica_rank=0)
    tok = configs[1].tokenizer
    prompts = [
        tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=True,
                                return_dict=True)["input_ids"]
        for q in ("What is 2 + 3?", "Compute 17 * 4 - 9, then add the digits of the result together.", "Hi")
    ]
    assert len({len(p) for p in prompts}) == 3  # different lengths: the batch needs padding
    params = {"temperature": 0, "logprobs": True, "ignore_eos": True}
    alone = [_run(server.generate(f"a{i}", prompt_ids=p, sampling_params=dict(params))) for i, p in enumerate(prompts)]
    batches = []
    original = server._sample_batch

    def spy(batch_prompts, sampling_params, max_new=None):
        batches.append(len(batch_prompts))
        return original(batch_prompts, sampling_params, max_new)

    server._sample_batch = spy

    async def together():
        return await asyncio.gather(*(server.generate(f"b{i}", prompt_ids=p, sampling_params=dict(params))
                                      for i, p in enumerate(prompts)))

    batched = _run(together())
    assert batches == [3]
    for a, b in zip(alone, batched, strict=True):
        assert a.token_ids == b.token_ids
        assert torch.allclose(torch.tensor(a.log_probs), torch.tensor(b.log_probs), atol=1e-4)
    # per-request budgets: a smaller max_tokens stops that row only
    short = dict(params, max_tokens=3)

    async def mixed():
        return await asyncio.gather(server.generate("c0", prompt_ids=prompts[0], sampling_params=short),
                                    server.generate("c1", prompt_ids=prompts[1], sampling_params=dict(params)))

    first, second = _run(mixed())
    assert len(first.token_ids) == 3 and first.token_ids == alone[0].token_ids[:3]
    assert second.token_ids == alone[1].token_ids
    # max_num_seqs=1 (the old behaviour) still works: one request per batch
    server._max_batch = 1
    batches.clear()
    _run(together())
    assert batches == [1, 1, 1]
