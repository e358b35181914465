"""Memory estimate (lapo_verl/memory_estimate.py): formulas against hand-computed numbers, config.json reading,
warnings that name the knob, unknown models, and `lapo-verl doctor --estimate-memory` on one recipe.

The arithmetic is written out with literal numbers so that each expected value can be checked by hand.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from omegaconf import OmegaConf

from lapo_verl import memory_estimate as me

GIB = 1024**3
QWEN_1_5B_PARAMS = (
    28 * (1536 * 1536 + 1536          # q_proj + bias
          + 2 * (1536 * 256 + 256)    # k_proj, v_proj (2 kv heads x 128) + biases
          + 1536 * 1536               # o_proj
          + 3 * 1536 * 8960           # gate, up, down
          + 2 * 1536)                 # two RMSNorms
    + 2 * 151936 * 1536               # embeddings + untied LM head
    + 1536                            # final norm
)


def test_builtin_shapes_have_the_published_parameter_counts():
    assert QWEN_1_5B_PARAMS == 1_777_088_000                      # DeepSeek-R1-Distill-Qwen-1.5B: "1.78B"
    assert me.QWEN2_1_5B.param_count == QWEN_1_5B_PARAMS
    assert me.QWEN2_7B.param_count == 7_615_616_512               # Qwen2.5-7B: "7.61B"
    for name in ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "agentica-org/DeepScaleR-1.5B-Preview"):
        assert me.builtin_shape(name) is me.QWEN2_1_5B
    for name in ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "Qwen/Qwen2.5-7B-Instruct"):
        assert me.builtin_shape(name) is me.QWEN2_7B
    assert me.builtin_shape("meta-llama/Llama-3-8B") is None


def _write_config(directory, **fields):
    data = {"model_type": "qwen2", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 1000, "tie_word_embeddings": True}
    data.update(fields)
    data = {k: v for k, v in data.items() if v is not None}
    (directory / "config.json").write_text(json.dumps(data))
    return directory


def test_config_json_is_read_from_a_directory_or_the_file(tmp_path):
    _write_config(tmp_path)
    shape = me.model_shape_from_config_json(tmp_path)
    assert shape == me.model_shape_from_config_json(tmp_path / "config.json")
    assert (shape.hidden_size, shape.num_layers, shape.num_attention_heads, shape.num_kv_heads, shape.head_dim,
            shape.intermediate_size, shape.vocab_size, shape.tie_word_embeddings, shape.qkv_bias) == \
        (64, 2, 4, 2, 16, 128, 1000, True, True)
    # per layer: q 64*64+64, k and v 64*32+32 each, o 64*64, MLP 3*64*128, norms 2*64; tied embedding 1000*64; norm 64
    assert shape.param_count == 2 * (64 * 64 + 64 + 2 * (64 * 32 + 32) + 64 * 64 + 3 * 64 * 128 + 2 * 64) \
        + 1000 * 64 + 64


def test_config_json_missing_fields_name_the_file_and_the_fields(tmp_path):
    _write_config(tmp_path, hidden_size=None, vocab_size=None)
    with pytest.raises(me.ModelConfigError) as err:
        me.model_shape_from_config_json(tmp_path)
    assert str(tmp_path / "config.json") in str(err.value)
    assert "hidden_size" in str(err.value) and "vocab_size" in str(err.value)
    with pytest.raises(me.ModelConfigError, match="not found"):
        me.model_shape_from_config_json(tmp_path / "nowhere")


def test_formulas_match_hand_computation():
    s = me.QWEN2_1_5B
    assert me.logits_bytes(10240, 151936) == 10240 * 151936 * 2                 # tokens x vocab x bf16
    assert me.param_shard_bytes(s.param_count, 4) == 1_777_088_000 * 4 / 4       # fp32 master weights / FSDP
    assert me.adam_state_bytes(s.param_count, 4) == 1_777_088_000 * 8 / 4       # m + v in fp32 / FSDP
    # resident between passes: params + Adam = 12 bytes per parameter / FSDP size
    assert me.param_shard_bytes(s.param_count, 8) + me.adam_state_bytes(s.param_count, 8) == 1_777_088_000 * 12 / 8
    assert me.kv_cache_bytes_per_token(s, tp=1) == 2 * 28 * 2 * 128 * 2        # K+V x layers x kv heads x dim x bf16
    assert me.kv_cache_bytes_per_token(s, tp=4) == 2 * 28 * 1 * 128 * 2        # 2 kv heads over TP 4: replicated
    assert me.layer_activation_bytes_per_token(s) == 20 * 1536 + 4 * 256 + 8 * 8960
    assert me.entropy_forward_extra_bytes(49152, 151936, chunking=True) == 4 * 2048 * 151936 * 4
    assert me.entropy_forward_extra_bytes(49152, 151936, chunking=False) == 2 * 49152 * 151936 * 2
    assert me.vllm_weight_bytes(s.param_count, tp=2) == 1_777_088_000 * 2 / 2


def test_update_pass_of_the_1_5b_model_by_hand():
    inp = me.EstimateInputs(n_gpus=4, fsdp_size=4, update_tokens=10240, gradient_checkpointing=True)
    est = me.update_pass(me.QWEN2_1_5B, inp)
    root, layer, t = 151936 * 1536 * 2 + 1536, 46_797_824, 10240
    expected = (
        1_777_088_000 * 4 / 4                                   # fp32 params shard
        + 1_777_088_000 * 4 / 4                                 # fp32 grads shard
        + 1_777_088_000 * 8 / 4                                 # Adam m + v shard
        + (root + 2 * layer) * 2                                # gathered bf16: root unit + 2 layers
        + (root + layer) * 4                                    # unsharded fp32 grads: root + 1 layer
        + 28 * t * 1536 * 2                                     # checkpointed layer inputs
        + t * (20 * 1536 + 4 * 256 + 8 * 8960)                  # one recomputed layer
        + t * 3 * 8960 * 2                                      # MLP gradients in flight
        + t * 1536 * 8                                          # final norm: fp32 input + 2 bf16 copies
        + t * 151936 * 2                                        # logits (flash-attn CE: gradient in place)
    ) / GIB + me.TRAINER_RUNTIME_GIB + me.VLLM_ASLEEP_GIB
    assert est.total_gib == pytest.approx(expected)
    assert est.tokens == 10240
    no_ckpt = me.update_pass(me.QWEN2_1_5B, replace(inp, gradient_checkpointing=False))
    assert no_ckpt.gib("activations") == pytest.approx(
        (28 * t * (20 * 1536 + 4 * 256 + 8 * 8960) + t * 3 * 8960 * 2 + t * 1536 * 8) / GIB)
    torch_ce = me.update_pass(me.QWEN2_1_5B, replace(inp, flash_attn_cross_entropy=False))
    assert torch_ce.gib("logits + their grad") == pytest.approx(3 * t * 151936 * 2 / GIB)


def test_log_prob_pass_counts_entropy_copies_and_leaves_offloaded_adam_out():
    inp = me.EstimateInputs(log_prob_tokens=15360, entropy_chunking=False)
    est = me.log_prob_pass(me.QWEN2_1_5B, inp)
    assert est.gib("logits (T x V)") == pytest.approx(15360 * 151936 * 2 / GIB)
    assert est.gib("entropy copies") == pytest.approx(2 * 15360 * 151936 * 2 / GIB)
    assert est.gib("Adam m+v (FSDP shard)") > 0
    offloaded = me.log_prob_pass(me.QWEN2_1_5B, replace(inp, optimizer_offload=True))
    assert offloaded.gib("Adam m+v (FSDP shard)") == 0
    hot = me.log_prob_pass(me.QWEN2_1_5B, replace(inp, temperature_is_one=False))
    assert hot.total_gib == pytest.approx(est.total_gib + 15360 * 151936 * 2 / GIB)


def test_vllm_room_and_sleeping_trainer_by_hand():
    inp = me.EstimateInputs(gpu_gib=80, n_gpus=4, fsdp_size=4, gpu_memory_utilization=0.6, rollout_tp=1,
                            max_num_seqs=256, max_num_batched_tokens=8192, responses_per_step=128 * 8)
    v = me.vllm_estimate(me.QWEN2_1_5B, inp)
    weights = 1_777_088_000 * 2
    activations = 8192 * (2 * (2 * 1536 + 3 * 8960) + 8 * 1536) + 2 * 256 * 151936 * 4
    room = 0.6 * 80 * GIB - weights - activations - me.VLLM_NON_TORCH_GIB * GIB
    assert v.kv_room_gib == pytest.approx(room / GIB)
    assert v.kv_capacity_tokens == int(room // 28672)
    assert v.full_sequences_in_kv == int(room // 28672) // (1024 + 4096)
    assert v.concurrent_sequences == min(256, 1024 // 4)
    assert v.trainer_resident_gib == pytest.approx(1_777_088_000 * 12 / 4 / GIB)
    assert v.rollout_total_gib == pytest.approx(48 + 1_777_088_000 * 12 / 4 / GIB + me.TRAINER_RUNTIME_GIB)


def test_paper_1_5b_setting_fits_without_warnings():
    est = me.estimate(me.QWEN2_1_5B, me.EstimateInputs())
    assert est.warnings == () and est.fits
    assert {p.name for p in est.passes} == {"log-prob", "ref", "update"}
    text = me.format_estimate(est)
    assert "not measured" in text and "no warnings" in text and "TOTAL" in text


def test_over_the_gpu_warns_and_names_the_knob_and_a_budget_that_fits():
    inp = me.EstimateInputs(response_length=8192, update_tokens=65536, log_prob_tokens=9216,
                            ref_log_prob_tokens=9216, gradient_checkpointing=False)
    est = me.estimate(me.QWEN2_1_5B, inp)
    update = [w for w in est.warnings if w.where == "update"]
    assert any(w.knob == me.K_UPDATE_TOKENS for w in update)
    assert any(w.knob == me.K_GRAD_CKPT for w in update)
    assert all(w.knob for w in est.warnings)
    # the suggested budget really fits, and is at least one sequence
    tokens = next(w.suggested for w in update if w.knob == me.K_UPDATE_TOKENS)
    assert 1024 + 8192 <= tokens < 65536
    assert me.update_pass(me.QWEN2_1_5B, inp, tokens).total_gib <= 80
    assert str(next(w for w in update if w.knob == me.K_UPDATE_TOKENS)).endswith(
        f"-> change {me.K_UPDATE_TOKENS} to {tokens:,}")
    assert "WARNING (estimate)" in me.format_estimate(est)


def test_unchunked_entropy_and_vllm_share_warnings():
    inp = me.EstimateInputs(response_length=16384, log_prob_tokens=98304, entropy_chunking=False,
                            gpu_memory_utilization=0.95)
    est = me.estimate(me.QWEN2_7B, inp)
    knobs = {w.knob for w in est.warnings}
    assert me.K_ENTROPY_CHUNKING in knobs and me.K_LOGPROB_TOKENS in knobs
    share = next(w for w in est.warnings if w.knob == me.K_GPU_UTIL)      # 0.95 x 80 + the 7B shard > 80
    # the share that fits next to the resident shard (params + Adam = 12 bytes x 7.6 B / 4 GPUs) and the runtime
    assert share.suggested == pytest.approx((80 - 7_615_616_512 * 12 / 4 / GIB - me.TRAINER_RUNTIME_GIB) / 80,
                                            abs=0.01)
    assert str(share).endswith(f"gpu_memory_utilization to <= {share.suggested:.2f}")


def test_a_kv_cache_smaller_than_the_concurrent_sequences_is_a_note_not_a_warning():
    # 7B, TP 1, 0.6 x 80 GiB: ~31 GiB of KV = ~114 sequences of 5k tokens, while 1,024 responses / 4 engines = 256
    est = me.estimate(me.QWEN2_7B, me.EstimateInputs())
    assert est.fits and est.warnings == ()
    assert [n.where for n in est.notes] == ["vLLM"] and "not out of memory" in est.notes[0].message
    assert "note (estimate): vLLM" in me.format_estimate(est)


def test_fixed_micro_batches_name_the_micro_batch_knob():
    cfg = _cfg(**{"actor_rollout_ref.actor.use_dynamic_bsz": False,
                  "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": 64,
                  "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": 2,
                  "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu": 2})
    inp = me.inputs_from_config(cfg, 80)
    assert inp.update_tokens == 64 * (1024 + 4096) and inp.update_tokens_knob == me.K_UPDATE_MICRO
    est = me.estimate(me.QWEN2_7B, inp)
    warning = next(w for w in est.warnings if w.knob == me.K_UPDATE_MICRO)
    assert 1 <= warning.suggested < 64 and str(warning).endswith(f"micro_batch_size_per_gpu to {warning.suggested}")


def _cfg(**dotted):
    """A minimal verl-like config (what a composed recipe holds for the keys the estimate reads)."""
    base = {
        "data": {"max_prompt_length": 1024, "max_response_length": 4096, "train_batch_size": 128},
        "trainer": {"n_gpus_per_node": 4, "nnodes": 1},
        "algorithm": {"use_kl_in_reward": False},
        "actor_rollout_ref": {
            "model": {"path": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "enable_gradient_checkpointing": True},
            "actor": {"use_dynamic_bsz": True, "ppo_max_token_len_per_gpu": 10240, "use_kl_loss": True,
                      "entropy_from_logits_with_chunking": True, "entropy_coeff": 0,
                      "fsdp_config": {"fsdp_size": -1, "param_offload": False, "optimizer_offload": False}},
            "ref": {"log_prob_max_token_len_per_gpu": 15360},
            "rollout": {"name": "vllm", "n": 8, "temperature": 1.0, "log_prob_max_token_len_per_gpu": 15360,
                        "tensor_model_parallel_size": 1, "gpu_memory_utilization": 0.6, "max_num_seqs": 256},
        },
    }
    cfg = OmegaConf.create(base)
    for key, value in dotted.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


def test_inputs_from_config_read_verl_keys():
    inp = me.inputs_from_config(_cfg(**{"trainer.nnodes": 2, "actor_rollout_ref.actor.fsdp_config.fsdp_size": 4}),
                                gpu_gib=40)
    assert (inp.gpu_gib, inp.n_gpus, inp.fsdp_size) == (40, 8, 4)
    assert (inp.update_tokens, inp.log_prob_tokens, inp.ref_log_prob_tokens) == (10240, 15360, 15360)
    assert inp.entropy_chunking and inp.gradient_checkpointing and not inp.entropy_in_update
    assert inp.responses_per_step == 1024
    no_kl = me.inputs_from_config(_cfg(**{"actor_rollout_ref.actor.use_kl_loss": False}), 80)
    assert no_kl.ref_log_prob_tokens is None
    # a budget below one sequence is raised to one sequence (verl places a long sample alone)
    short = me.inputs_from_config(_cfg(**{"actor_rollout_ref.actor.ppo_max_token_len_per_gpu": 100}), 80)
    assert short.update_tokens == 1024 + 4096


def test_estimate_from_config_reads_a_local_config_json(tmp_path):
    _write_config(tmp_path)
    est, reason = me.estimate_or_reason(_cfg(**{"actor_rollout_ref.model.path": str(tmp_path)}), gpu_gib=80)
    assert reason == "" and est.model.hidden_size == 64 and est.fits
    assert me.estimate_from_config(_cfg(**{"actor_rollout_ref.model.path": str(tmp_path)}), gpu_gib=80) == est


def test_unknown_model_gives_none_and_a_reason_never_an_error():
    unknown = _cfg(**{"actor_rollout_ref.model.path": "someone/unknown-model"})
    est, reason = me.estimate_or_reason(unknown, 80)
    assert est is None and "unknown-model" in reason
    assert me.estimate_from_config(unknown, 80) is None
    assert me.preflight_memory_lines(OmegaConf.create({"data": {"max_prompt_length": "not a number"}}), 80)[0] \
        .startswith("memory estimate skipped")
    lines = me.preflight_memory_lines(_cfg(), 80)
    assert lines[0].startswith("memory estimate (not measured)") and len(lines) == 1


def test_largest_tokens_that_fit_bisects():
    assert me.largest_tokens_that_fit(lambda t: t / 1000, 50, 1, 100_000) == 50_000
    assert me.largest_tokens_that_fit(lambda t: 100.0, 50, 1, 100_000) is None


def test_doctor_estimate_memory_on_a_recipe(tmp_path, capsys):
    from lapo_verl.doctor import main

    _write_config(tmp_path)
    code = main(["--estimate-memory", "lapo_stage1", "--gpu-gib", "80", "--",
                 f"actor_rollout_ref.model.path={tmp_path}", "data.max_response_length=2048"])
    out = capsys.readouterr().out
    assert code == 0
    assert "MEMORY ESTIMATE (not measured)" in out and "per GPU of 80.0 GiB" in out
    assert "hidden 64" in out and "response 2,048" in out and "update" in out
    assert "no warnings" in out


def test_activation_formula_matches_what_autograd_saves_for_a_tiny_qwen2():
    """The per-layer formula against the tensors autograd actually keeps (bf16, SDPA on CPU; flash-attn keeps the
    same q, k, v, output and softmax statistics)."""
    torch = pytest.importorskip("torch")
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(hidden_size=256, intermediate_size=1024, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=512, tie_word_embeddings=False)
    model = Qwen2ForCausalLM._from_config(config, attn_implementation="sdpa", dtype=torch.bfloat16).train()
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def keep(tensor):
        saved[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    tokens = 256
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        model(input_ids=torch.randint(0, 512, (1, tokens)))
    measured = sum(n for ptr, n in saved.items() if ptr not in weights) / tokens
    shape = me.ModelShape("tiny", 256, 2, 4, 2, 64, 1024, 512, tie_word_embeddings=False)
    # no checkpointing: L layers + the final norm (fp32 input + two bf16 copies), no backward yet
    formula = 2 * me.layer_activation_bytes_per_token(shape) + 256 * (4 + 2 * 2)
    assert formula == 2 * (20 * 256 + 4 * 128 + 8 * 1024) + 256 * 8
    assert formula == pytest.approx(measured, rel=0.03)
