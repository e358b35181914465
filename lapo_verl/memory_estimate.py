"""Per-GPU memory estimate of a LAPO/verl run, before any GPU is touched. Estimates, never measurements.

What is estimated (verl 0.9.1, V1 trainer, FSDP engine ``verl/workers/engine/fsdp/transformer_impl.py``,
colocated vLLM rollout ``verl/workers/engine_workers.py``), per GPU, in GiB (2**30 bytes):

* **log-prob pass** (old log-probs with entropy, ``trainer/ppo/v1/trainer_base.py: _compute_old_log_prob``): the
  actor's resident FSDP shard, the all-gathered bf16 units, one layer's forward activations, the logits of one
  micro-batch and the copies entropy makes of them.
* **ref pass** (``_compute_ref_log_prob``, no entropy): verl builds the reference model ``forward_only`` with
  FSDP ``CPUOffload`` (its weights live on the CPU), so it adds only its gathered units, activations and logits to
  the actor's resident shard.
* **update pass** (``_update_actor``): fp32 params + grads + Adam states sharded over the FSDP group, gathered bf16
  units and one unit's unsharded fp32 gradient, activations with or without gradient checkpointing, logits and
  their gradient.
* **vLLM**: bf16 weights / TP, activation profile, the KV room ``gpu_memory_utilization x GPU`` leaves, how many
  full-length sequences it holds, and whether that share plus the trainer's resident state fits the GPU.

Each formula is one small function whose docstring states it. Deliberate simplifications (say so when quoting):
eager PyTorch copies are counted where ``torch.compile`` (verl's ``use_torch_compile``, on by default) may fuse
some away; the fixed overheads (CUDA contexts, NCCL, fragmentation) are rough constants; sequence parallelism,
LoRA, Megatron and multimodal models are not modelled. Warnings name the knob to turn; an estimate never stops a
run: :func:`estimate_from_config` (None for an unknown model; :func:`estimate_or_reason` says why) and
:func:`preflight_memory_lines` never raise.

No torch or verl import at module level: the preflight runs in the Hydra driver, which must not create a CUDA
context (it would hold GPU memory next to the workers for the whole run).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

GIB = 1024**3
DEFAULT_GPU_GIB = 80.0

DTYPE_BYTES = {"fp32": 4, "float32": 4, "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2}

#: The trainer process's CUDA context, NCCL communicators and allocator fragmentation, per GPU (rough).
TRAINER_RUNTIME_GIB = 2.0
#: What a sleeping colocated vLLM engine keeps on its GPU (CUDA context, CUDA-graph pool) while the trainer runs,
#: with ``free_cache_engine=true`` (weights and KV cache are released by verl's sleep/wake-up).
VLLM_ASLEEP_GIB = 1.0
#: vLLM's own non-torch memory (context, NCCL, CUDA graphs) inside its ``gpu_memory_utilization`` share.
VLLM_NON_TORCH_GIB = 1.0

# knob names quoted in warnings
K_UPDATE_TOKENS = "actor_rollout_ref.actor.ppo_max_token_len_per_gpu"
K_UPDATE_MICRO = "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu"
K_LOGPROB_TOKENS = "actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu"
K_LOGPROB_MICRO = "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu"
K_REF_TOKENS = "actor_rollout_ref.ref.log_prob_max_token_len_per_gpu"
K_REF_MICRO = "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu"
K_GRAD_CKPT = "actor_rollout_ref.model.enable_gradient_checkpointing=true"
K_ENTROPY_CHUNKING = "actor_rollout_ref.actor.entropy_from_logits_with_chunking=true"
K_ENTROPY_CKPT = "actor_rollout_ref.actor.entropy_checkpointing=true"
K_GPU_UTIL = "actor_rollout_ref.rollout.gpu_memory_utilization"
K_TP = "actor_rollout_ref.rollout.tensor_model_parallel_size"
K_N_GPUS = "trainer.n_gpus_per_node"
K_OPT_OFFLOAD = "actor_rollout_ref.actor.fsdp_config.optimizer_offload=true"
K_PARAM_OFFLOAD = "actor_rollout_ref.actor.fsdp_config.param_offload=true"


# ---------------------------------------------------------------------------------------------------------------
# model shape


class ModelConfigError(ValueError):
    """A config.json that cannot describe the model's shape (names the file and the missing fields)."""


@dataclass(frozen=True)
class ModelShape:
    """The dimensions of a decoder-only transformer (Qwen2/Llama family) that memory depends on."""

    name: str
    hidden_size: int
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    qkv_bias: bool = True  # Qwen2 has biases on q, k and v; Llama-style models set attention_bias

    @property
    def q_dim(self) -> int:
        """Width of the query projection: heads x head_dim."""
        return self.num_attention_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of the key (and of the value) projection: kv_heads x head_dim."""
        return self.num_kv_heads * self.head_dim

    @property
    def layer_params(self) -> int:
        """One decoder layer: h q + 2 h kv + q h (attention) [+ q + 2 kv biases] + 3 h I (SwiGLU) + 2 h (norms)."""
        h, q, kv, inter = self.hidden_size, self.q_dim, self.kv_dim, self.intermediate_size
        attention = h * q + 2 * h * kv + q * h + ((q + 2 * kv) if self.qkv_bias else 0)
        return attention + 3 * h * inter + 2 * h

    @property
    def embedding_params(self) -> int:
        """Input embeddings plus the LM head (one matrix when tied): V h x (1 if tied else 2)."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    @property
    def root_unit_params(self) -> int:
        """FSDP's root unit (everything outside the wrapped decoder layers): embeddings, LM head, final norm."""
        return self.embedding_params + self.hidden_size

    @property
    def param_count(self) -> int:
        """All parameters: L x layer + embeddings (+ head) + final norm."""
        return self.num_layers * self.layer_params + self.root_unit_params


def _qwen2(name: str, hidden: int, layers: int, heads: int, kv_heads: int, inter: int, vocab: int) -> ModelShape:
    return ModelShape(name=name, hidden_size=hidden, num_layers=layers, num_attention_heads=heads,
                      num_kv_heads=kv_heads, head_dim=hidden // heads, intermediate_size=inter, vocab_size=vocab,
                      tie_word_embeddings=False, qkv_bias=True)


#: The paper's models (their config.json values), for HF ids that are not local directories and for the README.
QWEN2_1_5B = _qwen2("Qwen2-1.5B (DeepSeek-R1-Distill-Qwen-1.5B, DeepScaleR-1.5B)", 1536, 28, 12, 2, 8960, 151936)
QWEN2_7B = _qwen2("Qwen2-7B (DeepSeek-R1-Distill-Qwen-7B, Qwen2.5-7B)", 3584, 28, 28, 4, 18944, 152064)

#: lower-cased name patterns (searched in the model path) -> built-in shape
BUILTIN_SHAPES: tuple[tuple[str, ModelShape], ...] = (
    (r"r1-distill-qwen-1\.5b", QWEN2_1_5B),
    (r"deepscaler-1\.5b", QWEN2_1_5B),
    (r"r1-distill-qwen-7b", QWEN2_7B),
    (r"qwen2\.5-7b", QWEN2_7B),
)


def builtin_shape(model_name: str) -> ModelShape | None:
    """The built-in shape whose pattern occurs in ``model_name`` (an HF id or path), else None."""
    lowered = str(model_name).lower()
    for pattern, shape in BUILTIN_SHAPES:
        if re.search(pattern, lowered):
            return shape
    return None


def model_shape_from_config_json(path_or_dir: str | Path) -> ModelShape:
    """Read a Hugging Face ``config.json`` (the file or its directory) into a :class:`ModelShape`.

    Required: hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, vocab_size. Defaults as in
    transformers' Qwen2/Llama configs: num_key_value_heads = heads, head_dim = hidden / heads,
    tie_word_embeddings = false, q/k/v biases for model_type qwen2 else ``attention_bias`` (false).
    Raises :class:`ModelConfigError` naming the file and every missing field.
    """
    path = Path(path_or_dir)
    file = path / "config.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise ModelConfigError(f"{file}: not found (the memory estimate reads the model's config.json)") from None
    except json.JSONDecodeError as exc:
        raise ModelConfigError(f"{file}: not valid JSON ({exc})") from None
    if "text_config" in data and "hidden_size" not in data:
        data = {**data, **data["text_config"]}  # multimodal wrappers keep the language model's shape there
    required = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")
    missing = [key for key in required if data.get(key) is None]
    if missing:
        raise ModelConfigError(f"{file}: missing field(s) {', '.join(missing)} needed for the memory estimate")
    heads = int(data["num_attention_heads"])
    hidden = int(data["hidden_size"])
    qkv_bias = bool(data.get("attention_bias", data.get("model_type") == "qwen2"))
    return ModelShape(
        name=str(data.get("_name_or_path") or file.parent.name or file.name),
        hidden_size=hidden,
        num_layers=int(data["num_hidden_layers"]),
        num_attention_heads=heads,
        num_kv_heads=int(data.get("num_key_value_heads") or heads),
        head_dim=int(data.get("head_dim") or hidden // heads),
        intermediate_size=int(data["intermediate_size"]),
        vocab_size=int(data["vocab_size"]),
        tie_word_embeddings=bool(data.get("tie_word_embeddings", False)),
        qkv_bias=qkv_bias,
    )


# ---------------------------------------------------------------------------------------------------------------
# inputs


@dataclass(frozen=True)
class EstimateInputs:
    """Everything besides the model shape that the estimate depends on, read from a composed verl config.

    Token counts are per GPU and per micro-batch: the dynamic-batch budget, or micro-batch size x (prompt +
    response) when ``use_dynamic_bsz=false``. ``*_knob`` is the key to lower when that pass does not fit.
    """

    gpu_gib: float = DEFAULT_GPU_GIB
    prompt_length: int = 1024
    response_length: int = 4096
    n_gpus: int = 4                      # trainer.n_gpus_per_node x trainer.nnodes
    fsdp_size: int = 4                   # GPUs one FSDP shard group spans (fsdp_size -1 = all)
    update_tokens: int = 10240
    log_prob_tokens: int = 15360
    ref_log_prob_tokens: int | None = 15360   # None: no reference model (no KL)
    update_tokens_knob: str = K_UPDATE_TOKENS
    log_prob_tokens_knob: str = K_LOGPROB_TOKENS
    ref_tokens_knob: str = K_REF_TOKENS
    use_dynamic_bsz: bool = True
    gradient_checkpointing: bool = True
    entropy_chunking: bool = True
    entropy_chunk_size: int = 2048
    entropy_checkpointing: bool = False
    entropy_in_update: bool = False      # entropy_coeff != 0 or calculate_entropy
    temperature_is_one: bool = True
    param_offload: bool = False
    optimizer_offload: bool = False
    master_bytes: int = 4                # fsdp_config.model_dtype (fp32 master weights)
    compute_bytes: int = 2               # mixed_precision.param_dtype (bf16)
    rollout_name: str = "vllm"
    rollout_tp: int = 1
    gpu_memory_utilization: float = 0.6
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    free_cache_engine: bool = True
    responses_per_step: int = 1024       # data.train_batch_size x rollout.n
    flash_attn_cross_entropy: bool = True  # GPU installs have flash-attn; VERL_DISABLE_FLASH_ATTN_CE=1 turns it off

    @property
    def sequence_length(self) -> int:
        return self.prompt_length + self.response_length


def _select(cfg: Any, key: str, default: Any = None) -> Any:
    from omegaconf import OmegaConf

    value = OmegaConf.select(cfg, key, default=default, throw_on_missing=False)
    return default if value is None else value


def _dtype_bytes(name: Any, default: int) -> int:
    return DTYPE_BYTES.get(str(name).lower().replace("torch.", ""), default) if name is not None else default


def inputs_from_config(cfg: Any, gpu_gib: float | None = None) -> EstimateInputs:
    """Read :class:`EstimateInputs` from a composed verl config (``DictConfig``), as verl 0.9.1 would use it.

    ``gpu_gib`` None: :func:`detect_gpu_gib` (nvidia-smi; :data:`DEFAULT_GPU_GIB` without one).
    """
    a = "actor_rollout_ref"
    prompt = int(_select(cfg, "data.max_prompt_length", 1024))
    response = int(_select(cfg, "data.max_response_length", 4096))
    sequence = prompt + response
    n_gpus = int(_select(cfg, "trainer.n_gpus_per_node", 1)) * int(_select(cfg, "trainer.nnodes", 1))
    fsdp_size = int(_select(cfg, f"{a}.actor.fsdp_config.fsdp_size", -1))
    fsdp_size = n_gpus if fsdp_size < 1 or fsdp_size >= n_gpus else fsdp_size  # verl's create_device_mesh
    dynamic = bool(_select(cfg, f"{a}.actor.use_dynamic_bsz", False))

    def tokens(dynamic_key: str, micro_key: str, token_knob: str, micro_knob: str) -> tuple[int, str]:
        # dynamic batches hold up to the budget (never below one sequence: verl places a long sample alone);
        # fixed micro-batches hold micro x (prompt + response) tokens at worst (padding removed)
        if dynamic:
            return max(int(_select(cfg, dynamic_key, sequence)), sequence), token_knob
        micro = _select(cfg, micro_key, None)
        return int(micro or 1) * sequence, micro_knob

    update_tokens, update_knob = tokens(f"{a}.actor.ppo_max_token_len_per_gpu",
                                        f"{a}.actor.ppo_micro_batch_size_per_gpu", K_UPDATE_TOKENS, K_UPDATE_MICRO)
    log_prob_tokens, log_prob_knob = tokens(f"{a}.rollout.log_prob_max_token_len_per_gpu",
                                            f"{a}.rollout.log_prob_micro_batch_size_per_gpu",
                                            K_LOGPROB_TOKENS, K_LOGPROB_MICRO)
    has_ref = bool(_select(cfg, f"{a}.actor.use_kl_loss", False)) or bool(
        _select(cfg, "algorithm.use_kl_in_reward", False))
    ref_tokens, ref_knob = tokens(f"{a}.ref.log_prob_max_token_len_per_gpu",
                                  f"{a}.ref.log_prob_micro_batch_size_per_gpu", K_REF_TOKENS, K_REF_MICRO)
    entropy_coeff = float(_select(cfg, f"{a}.actor.entropy_coeff", 0.0))
    mixed = _select(cfg, f"{a}.actor.fsdp_config.mixed_precision", None)
    param_dtype = mixed.get("param_dtype", "bf16") if mixed is not None else "bf16"
    tp = int(_select(cfg, f"{a}.rollout.tensor_model_parallel_size", 1))
    return EstimateInputs(
        gpu_gib=float(gpu_gib) if gpu_gib is not None else detect_gpu_gib(),
        prompt_length=prompt,
        response_length=response,
        n_gpus=n_gpus,
        fsdp_size=fsdp_size,
        update_tokens=update_tokens,
        log_prob_tokens=log_prob_tokens,
        ref_log_prob_tokens=ref_tokens if has_ref else None,
        update_tokens_knob=update_knob,
        log_prob_tokens_knob=log_prob_knob,
        ref_tokens_knob=ref_knob,
        use_dynamic_bsz=dynamic,
        gradient_checkpointing=bool(_select(cfg, f"{a}.model.enable_gradient_checkpointing", True)),
        entropy_chunking=bool(_select(cfg, f"{a}.actor.entropy_from_logits_with_chunking", False)),
        entropy_chunk_size=int(_select(cfg, f"{a}.actor.entropy_from_logits_chunk_size", 2048)),
        entropy_checkpointing=bool(_select(cfg, f"{a}.actor.entropy_checkpointing", False)),
        entropy_in_update=entropy_coeff != 0.0 or bool(_select(cfg, f"{a}.actor.calculate_entropy", False)),
        temperature_is_one=float(_select(cfg, f"{a}.rollout.temperature", 1.0)) == 1.0,
        param_offload=bool(_select(cfg, f"{a}.actor.fsdp_config.param_offload", False)),
        optimizer_offload=bool(_select(cfg, f"{a}.actor.fsdp_config.optimizer_offload", False)),
        master_bytes=_dtype_bytes(_select(cfg, f"{a}.actor.fsdp_config.model_dtype", "fp32"), 4),
        compute_bytes=_dtype_bytes(param_dtype, 2),
        rollout_name=str(_select(cfg, f"{a}.rollout.name", "vllm")),
        rollout_tp=max(tp, 1),
        gpu_memory_utilization=float(_select(cfg, f"{a}.rollout.gpu_memory_utilization", 0.5)),
        max_num_seqs=int(_select(cfg, f"{a}.rollout.max_num_seqs", 256)),
        max_num_batched_tokens=int(_select(cfg, f"{a}.rollout.max_num_batched_tokens", 8192)),
        free_cache_engine=bool(_select(cfg, f"{a}.rollout.free_cache_engine", True)),
        responses_per_step=int(_select(cfg, "data.train_batch_size", 1)) * int(_select(cfg, f"{a}.rollout.n", 1)),
        # an install fact, not a config one: assume the GPU install (README "Install") unless verl is told not to
        flash_attn_cross_entropy=os.environ.get("VERL_DISABLE_FLASH_ATTN_CE", "0") != "1",
    )


def detect_gpu_gib(default: float = DEFAULT_GPU_GIB) -> float:
    """Memory of GPU 0 in GiB from ``nvidia-smi`` (no CUDA context in this process), else ``default``."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return default
    try:
        out = subprocess.run([exe, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return int(out.split()[0]) / 1024  # MiB -> GiB
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return default


# ---------------------------------------------------------------------------------------------------------------
# formulas (bytes)


def param_shard_bytes(params: int, fsdp_size: int, master_bytes: int = 4) -> float:
    """FSDP-sharded master weights: P x master_bytes / fsdp_size (fp32: 4 bytes per parameter)."""
    return params * master_bytes / fsdp_size


def grad_shard_bytes(params: int, fsdp_size: int, master_bytes: int = 4) -> float:
    """FSDP-sharded gradients, in the master dtype: P x master_bytes / fsdp_size."""
    return params * master_bytes / fsdp_size


def adam_state_bytes(params: int, fsdp_size: int, master_bytes: int = 4) -> float:
    """AdamW's exp_avg and exp_avg_sq, sharded like the weights: 2 x P x master_bytes / fsdp_size (8 B/param fp32)."""
    return 2 * params * master_bytes / fsdp_size


def gathered_units_bytes(shape: ModelShape, compute_bytes: int = 2) -> float:
    """All-gathered weights in the compute dtype: (root unit + 2 decoder layers) x compute_bytes.

    verl wraps each decoder layer as an FSDP unit; the root unit (embeddings, LM head, final norm) stays gathered
    through the forward, and one layer is in use while the next is being gathered.
    """
    return (shape.root_unit_params + 2 * shape.layer_params) * compute_bytes


def unsharded_grad_bytes(shape: ModelShape) -> float:
    """Full-size gradients before FSDP's reduce-scatter, in the fp32 reduce dtype: (root unit + 1 layer) x 4.

    The root unit's gradient (embeddings, LM head) lives until the end of the backward; layer gradients are
    reduce-scattered one layer at a time.
    """
    return (shape.root_unit_params + shape.layer_params) * 4


def layer_activation_bytes_per_token(shape: ModelShape, compute_bytes: int = 2) -> float:
    """What autograd saves per token in one decoder layer (SwiGLU MLP, HF's RMSNorm computed in fp32):

    2 RMSNorms x [fp32 input (4 h) + compute_bytes x (normalized h + weight x normalized h, the next linear's
    input)] + compute_bytes x [q, k, v after RoPE (q + 2 kv) + attention output (q) + gate, up, SiLU(gate),
    SiLU(gate) x up (4 I)]. For bf16 Qwen2 (q = h): 20 h + 4 kv + 8 I bytes. Checked against the tensors
    autograd saves for a tiny bf16 Qwen2 (transformers 5, SDPA): within 1% (the rest: RoPE tables, softmax
    statistics).
    """
    h, q, kv, inter = shape.hidden_size, shape.q_dim, shape.kv_dim, shape.intermediate_size
    norms = 2 * (4 * h + compute_bytes * 2 * h)
    return norms + compute_bytes * (q + 2 * kv + q + 4 * inter)


def update_activation_bytes(shape: ModelShape, tokens: int, checkpointing: bool, compute_bytes: int = 2) -> float:
    """Activations of one update micro-batch of ``tokens`` tokens (T).

    With gradient checkpointing: every layer's input (L x T x h x compute_bytes) + one layer recomputed in the
    backward (T x per-layer bytes). Without: L x T x per-layer bytes. Both add the backward's gradients in flight
    at the widest point, the MLP (T x 3 I x compute_bytes), and the final norm's saved tensors
    (T x h x (4 + 2 x compute_bytes), as in :func:`layer_activation_bytes_per_token`).
    """
    per_layer = layer_activation_bytes_per_token(shape, compute_bytes)
    grads_in_flight = tokens * 3 * shape.intermediate_size * compute_bytes
    final_norm = tokens * shape.hidden_size * (4 + 2 * compute_bytes)
    if checkpointing:
        saved = shape.num_layers * tokens * shape.hidden_size * compute_bytes + tokens * per_layer
    else:
        saved = shape.num_layers * tokens * per_layer
    return saved + grads_in_flight + final_norm


def forward_activation_bytes(shape: ModelShape, tokens: int, compute_bytes: int = 2) -> float:
    """Transient activations of a no-grad forward (log-prob passes, vLLM's profile run): the widest point of one
    layer, T x [compute_bytes x (2 h residual and normed + 3 I gate, up, SiLU) + 8 h RMSNorm's fp32 copies]."""
    h, inter = shape.hidden_size, shape.intermediate_size
    return tokens * (compute_bytes * (2 * h + 3 * inter) + 8 * h)


def update_logits_copies(flash_attn_cross_entropy: bool) -> int:
    """Full T x V tensors the update's log-probs keep: 1 with flash-attn's cross-entropy (it saves the logits and
    writes their gradient into the same buffer, ``inplace_backward=True``); 3 with verl's PyTorch fallback
    ``logprobs_from_logits_v2`` (logits + each row's saved log_softmax + the logits' gradient)."""
    return 1 if flash_attn_cross_entropy else 3


def logits_bytes(tokens: int, vocab_size: int, dtype_bytes: int = 2) -> float:
    """Logits of one micro-batch: T x V x dtype_bytes. HF Qwen2 returns them in the compute dtype (bf16) and verl's
    FSDP engine does not up-cast them (``prepare_model_outputs``; padding removed, so T counts real tokens)."""
    return tokens * vocab_size * dtype_bytes


def entropy_forward_extra_bytes(tokens: int, vocab_size: int, chunking: bool, chunk_size: int = 2048,
                                dtype_bytes: int = 2) -> float:
    """Extra copies of the logits made by verl's entropy (``verl/utils/torch_functional.py``), counted eagerly.

    ``entropy_from_logits`` (no chunking), in the logits dtype: softmax (pd) + one temporary (logsumexp's
    ``x - max``, later ``pd x logits``) = 2 x T x V x dtype_bytes.
    ``entropy_from_logits_with_chunking``: per chunk a float32 copy, its softmax and logsumexp's two
    temporaries = 4 x min(C, T) x V x 4.
    log-probs add no full copy: flash-attn's cross-entropy kernel (GPU installs) or a row-by-row log_softmax.
    """
    if chunking:
        return 4 * min(chunk_size, tokens) * vocab_size * 4
    return 2 * tokens * vocab_size * dtype_bytes


def entropy_update_extra_bytes(tokens: int, vocab_size: int, chunking: bool, checkpointing: bool,
                               chunk_size: int = 2048, dtype_bytes: int = 2) -> float:
    """Entropy in the update (only when ``entropy_coeff != 0``): what autograd keeps plus the backward's gradient.

    entropy_checkpointing: the forward's transient copies (recomputed in the backward) + a T x V gradient.
    Otherwise, chunked: each chunk's float32 copy and softmax stay saved, 2 x T x V x 4; unchunked: softmax saved
    + its gradient, 2 x T x V x dtype_bytes.
    """
    if checkpointing:
        return (entropy_forward_extra_bytes(tokens, vocab_size, chunking, chunk_size, dtype_bytes)
                + tokens * vocab_size * dtype_bytes)
    if chunking:
        return 2 * tokens * vocab_size * 4
    return 2 * tokens * vocab_size * dtype_bytes


def vllm_weight_bytes(params: int, tp: int, dtype_bytes: int = 2) -> float:
    """vLLM's weights on one GPU: P x dtype_bytes / TP (bf16)."""
    return params * dtype_bytes / tp


def kv_cache_bytes_per_token(shape: ModelShape, tp: int, dtype_bytes: int = 2) -> float:
    """KV cache per token on one GPU: 2 (K and V) x L x ceil(kv_heads / TP) x head_dim x dtype_bytes
    (vLLM replicates KV heads when TP exceeds their number)."""
    kv_heads_per_gpu = math.ceil(shape.num_kv_heads / tp)
    return 2 * shape.num_layers * kv_heads_per_gpu * shape.head_dim * dtype_bytes


def vllm_activation_bytes(shape: ModelShape, max_num_batched_tokens: int, max_num_seqs: int) -> float:
    """vLLM's profiled activation peak (rough): a no-grad forward of max_num_batched_tokens tokens + the sampler's
    float32 logits and probabilities for max_num_seqs sequences (2 x S x V x 4)."""
    return forward_activation_bytes(shape, max_num_batched_tokens) + 2 * max_num_seqs * shape.vocab_size * 4


def vllm_kv_room_bytes(gpu_bytes: float, utilization: float, weights: float, activations: float) -> float:
    """KV cache vLLM can allocate: utilization x GPU - weights - activations - non-torch overhead."""
    return utilization * gpu_bytes - weights - activations - VLLM_NON_TORCH_GIB * GIB


def concurrent_sequences(responses_per_step: int, n_gpus: int, tp: int, max_num_seqs: int) -> int:
    """Sequences one vLLM engine runs at once: min(max_num_seqs, ceil(responses per step / (GPUs / TP)))."""
    engines = max(n_gpus // tp, 1)
    return min(max_num_seqs, math.ceil(responses_per_step / engines))


# ---------------------------------------------------------------------------------------------------------------
# result


@dataclass(frozen=True)
class Component:
    name: str
    gib: float


@dataclass(frozen=True)
class PassEstimate:
    """One trainer pass on one GPU: its components (GiB) and the tokens of its micro-batch."""

    name: str
    tokens: int
    components: tuple[Component, ...]

    @property
    def total_gib(self) -> float:
        return sum(c.gib for c in self.components)

    def gib(self, name: str) -> float:
        return sum(c.gib for c in self.components if c.name == name)


@dataclass(frozen=True)
class VllmEstimate:
    """The colocated vLLM engine on one GPU while generating (GiB unless named otherwise)."""

    tp: int
    utilization: float
    share_gib: float                 # utilization x GPU
    weights_gib: float
    activations_gib: float
    kv_room_gib: float
    kv_bytes_per_token: float
    kv_capacity_tokens: int
    full_sequences_in_kv: int        # sequences of prompt + response tokens the KV room holds
    concurrent_sequences: int        # what one engine is asked to run at once
    trainer_resident_gib: float      # the trainer's state left on the GPU while vLLM generates
    rollout_total_gib: float         # share + trainer resident + trainer runtime


@dataclass(frozen=True)
class MemoryWarning:
    """An estimate over the GPU (or a vLLM limit), with the knob to turn."""

    where: str
    message: str
    knob: str
    suggested: int | float | None = None   # a value of ``knob`` estimated to fit (token budget, micro-batch, share)

    def __str__(self) -> str:
        to = "" if self.suggested is None else f" to {self.suggested:,}" if isinstance(self.suggested, int) \
            else f" to <= {self.suggested:.2f}"
        return f"{self.where}: {self.message} -> change {self.knob}{to}"


@dataclass(frozen=True)
class MemoryEstimate:
    """Per-GPU memory estimate (not a measurement) of one configuration."""

    model: ModelShape
    inputs: EstimateInputs
    passes: tuple[PassEstimate, ...]
    vllm: VllmEstimate | None
    warnings: tuple[MemoryWarning, ...]          # an estimate over the GPU (or vLLM unable to start)
    notes: tuple[MemoryWarning, ...] = ()        # throughput, not memory: the KV cache holds fewer long sequences
                                                 # than an engine runs at once, so vLLM queues or preempts

    @property
    def trainer_peak_gib(self) -> float:
        return max(p.total_gib for p in self.passes)

    @property
    def peak_gib(self) -> float:
        """The largest per-GPU estimate of any phase (trainer passes, generation)."""
        return max(self.trainer_peak_gib, self.vllm.rollout_total_gib if self.vllm else 0.0)

    @property
    def fits(self) -> bool:
        return not self.warnings

    def pass_named(self, name: str) -> PassEstimate | None:
        return next((p for p in self.passes if p.name == name), None)


# ---------------------------------------------------------------------------------------------------------------
# the estimate


def _resident_components(shape: ModelShape, inp: EstimateInputs, *, grads: bool, optimizer: bool,
                         weights: bool = True) -> list[Component]:
    params = shape.param_count
    parts = []
    if weights:
        parts.append(Component("params (FSDP shard)", param_shard_bytes(params, inp.fsdp_size, inp.master_bytes) / GIB))
    if grads:
        parts.append(Component("grads (FSDP shard)", grad_shard_bytes(params, inp.fsdp_size, inp.master_bytes) / GIB))
    if optimizer:
        adam = adam_state_bytes(params, inp.fsdp_size, inp.master_bytes)
        parts.append(Component("Adam m+v (FSDP shard)", adam / GIB))
    return parts


def _runtime_components(inp: EstimateInputs) -> list[Component]:
    # while the trainer runs, a sleeping vLLM keeps its context; without free_cache_engine it keeps its whole share
    vllm_kept = VLLM_ASLEEP_GIB if inp.free_cache_engine else inp.gpu_memory_utilization * inp.gpu_gib
    parts = [Component("CUDA/NCCL runtime (rough)", TRAINER_RUNTIME_GIB)]
    if inp.rollout_name == "vllm":
        parts.append(Component("vLLM while the trainer runs", vllm_kept))
    return parts


def log_prob_pass(shape: ModelShape, inp: EstimateInputs, tokens: int | None = None) -> PassEstimate:
    """Old-log-prob pass of the actor (entropy computed), per GPU: resident shard (params; Adam unless offloaded)
    + gathered units + forward activations + logits + entropy copies [+ a temperature-scaled copy]."""
    t = inp.log_prob_tokens if tokens is None else tokens
    v, cb = shape.vocab_size, inp.compute_bytes
    parts = _resident_components(shape, inp, grads=False, optimizer=not inp.optimizer_offload)
    parts += [
        Component("gathered weights (bf16 units)", gathered_units_bytes(shape, cb) / GIB),
        Component("activations", forward_activation_bytes(shape, t, cb) / GIB),
        Component("logits (T x V)", logits_bytes(t, v, cb) / GIB),
        Component("entropy copies", entropy_forward_extra_bytes(t, v, inp.entropy_chunking,
                                                                inp.entropy_chunk_size, cb) / GIB),
    ]
    if not inp.temperature_is_one:
        parts.append(Component("logits / temperature", logits_bytes(t, v, cb) / GIB))
    return PassEstimate("log-prob", t, tuple(parts + _runtime_components(inp)))


def ref_pass(shape: ModelShape, inp: EstimateInputs, tokens: int | None = None) -> PassEstimate:
    """Reference log-prob pass, per GPU: the actor's resident shard (params unless param_offload, Adam unless
    optimizer_offload) + the reference model's gathered units (its weights sit on the CPU: verl's forward_only
    CPUOffload) + forward activations + logits (no entropy)."""
    t = (inp.ref_log_prob_tokens or 0) if tokens is None else tokens
    v, cb = shape.vocab_size, inp.compute_bytes
    parts = _resident_components(shape, inp, grads=False, optimizer=not inp.optimizer_offload,
                                 weights=not inp.param_offload)
    parts += [
        Component("gathered weights (bf16 units)", gathered_units_bytes(shape, cb) / GIB),
        Component("activations", forward_activation_bytes(shape, t, cb) / GIB),
        Component("logits (T x V)", logits_bytes(t, v, cb) / GIB),
    ]
    if not inp.temperature_is_one:
        parts.append(Component("logits / temperature", logits_bytes(t, v, cb) / GIB))
    return PassEstimate("ref", t, tuple(parts + _runtime_components(inp)))


def update_pass(shape: ModelShape, inp: EstimateInputs, tokens: int | None = None) -> PassEstimate:
    """Actor update, per GPU: params + grads + Adam (all loaded, offloaded or not) + gathered units + unsharded
    gradients + activations + logits and their gradient (:func:`update_logits_copies` x T x V x 2) [+ entropy]
    [+ temperature copy]."""
    t = inp.update_tokens if tokens is None else tokens
    v, cb = shape.vocab_size, inp.compute_bytes
    parts = _resident_components(shape, inp, grads=True, optimizer=True)
    parts += [
        Component("gathered weights (bf16 units)", gathered_units_bytes(shape, cb) / GIB),
        Component("unsharded grads (fp32)", unsharded_grad_bytes(shape) / GIB),
        Component("activations", update_activation_bytes(shape, t, inp.gradient_checkpointing, cb) / GIB),
        Component("logits + their grad", update_logits_copies(inp.flash_attn_cross_entropy)
                  * logits_bytes(t, v, cb) / GIB),
    ]
    if inp.entropy_in_update:
        parts.append(Component("entropy copies", entropy_update_extra_bytes(
            t, v, inp.entropy_chunking, inp.entropy_checkpointing, inp.entropy_chunk_size, cb) / GIB))
    if not inp.temperature_is_one:
        parts.append(Component("logits / temperature", logits_bytes(t, v, cb) / GIB))
    return PassEstimate("update", t, tuple(parts + _runtime_components(inp)))


def vllm_estimate(shape: ModelShape, inp: EstimateInputs) -> VllmEstimate:
    """vLLM while generating: its share (utilization x GPU) split into weights, activations and KV room, and the
    trainer's resident state next to it (params unless param_offload, Adam unless optimizer_offload)."""
    gpu_bytes = inp.gpu_gib * GIB
    weights = vllm_weight_bytes(shape.param_count, inp.rollout_tp)
    activations = vllm_activation_bytes(shape, inp.max_num_batched_tokens, inp.max_num_seqs)
    room = vllm_kv_room_bytes(gpu_bytes, inp.gpu_memory_utilization, weights, activations)
    per_token = kv_cache_bytes_per_token(shape, inp.rollout_tp)
    capacity = max(int(room // per_token), 0)
    resident = 0.0
    if not inp.param_offload:
        resident += param_shard_bytes(shape.param_count, inp.fsdp_size, inp.master_bytes)
    if not inp.optimizer_offload:
        resident += adam_state_bytes(shape.param_count, inp.fsdp_size, inp.master_bytes)
    share = inp.gpu_memory_utilization * inp.gpu_gib
    return VllmEstimate(
        tp=inp.rollout_tp, utilization=inp.gpu_memory_utilization, share_gib=share, weights_gib=weights / GIB,
        activations_gib=activations / GIB, kv_room_gib=room / GIB, kv_bytes_per_token=per_token,
        kv_capacity_tokens=capacity, full_sequences_in_kv=capacity // inp.sequence_length,
        concurrent_sequences=concurrent_sequences(inp.responses_per_step, inp.n_gpus, inp.rollout_tp,
                                                  inp.max_num_seqs),
        trainer_resident_gib=resident / GIB, rollout_total_gib=share + resident / GIB + TRAINER_RUNTIME_GIB,
    )


def largest_tokens_that_fit(total_gib_at: Callable[[int], float], gpu_gib: float, low: int, high: int) -> int | None:
    """Largest token count T in [low, high] with total_gib_at(T) <= gpu_gib (bisection; totals grow with T), or
    None when even ``low`` does not fit."""
    if total_gib_at(low) > gpu_gib:
        return None
    while low < high:
        mid = (low + high + 1) // 2
        if total_gib_at(mid) <= gpu_gib:
            low = mid
        else:
            high = mid - 1
    return low


#: log_prob_pass / ref_pass / update_pass: (shape, inputs, tokens) -> estimate
PassFunction = Callable[[ModelShape, EstimateInputs, int], PassEstimate]


def _suggest_tokens(pass_fn: PassFunction, shape: ModelShape, inp: EstimateInputs, tokens: int,
                    knob: str) -> tuple[str, int | None]:
    """The advice for a pass over the GPU, and the value of ``knob`` estimated to fit (None: none does)."""
    best = largest_tokens_that_fit(lambda t: pass_fn(shape, inp, t).total_gib, inp.gpu_gib, inp.sequence_length,
                                   tokens)
    if best is None:
        return (f"even one sequence of {inp.sequence_length:,} tokens does not fit: lower data.max_response_length, "
                f"turn on what the next lines name, or use more GPUs ({K_N_GPUS})"), None
    if knob.endswith("micro_batch_size_per_gpu"):
        micro = max(best // inp.sequence_length, 1)
        return f"{micro} sequence(s) per micro-batch fit", micro
    # round down to a multiple of 1,024, but never below one sequence
    budget = max(best // 1024 * 1024, inp.sequence_length)
    return f"~{budget:,} tokens per micro-batch fit (now {tokens:,})", budget


def _pass_warnings(shape: ModelShape, inp: EstimateInputs, est: PassEstimate, where: str, pass_fn: PassFunction,
                   knob: str) -> list[MemoryWarning]:
    if est.total_gib <= inp.gpu_gib:
        return []
    head = f"estimated {est.total_gib:.1f} GiB per GPU > {inp.gpu_gib:.0f} GiB"
    advice, suggested = _suggest_tokens(pass_fn, shape, inp, est.tokens, knob)
    out = [MemoryWarning(where, f"{head}; {advice}", knob, suggested)]
    if where == "update" and not inp.gradient_checkpointing:
        saved = est.gib("activations") - update_activation_bytes(shape, est.tokens, True, inp.compute_bytes) / GIB
        out.append(MemoryWarning(where, f"gradient checkpointing is off (on saves ~{saved:.1f} GiB)", K_GRAD_CKPT))
    if where == "log-prob" and not inp.entropy_chunking:
        saved = est.gib("entropy copies") - entropy_forward_extra_bytes(
            est.tokens, shape.vocab_size, True, inp.entropy_chunk_size) / GIB
        out.append(MemoryWarning(where, f"entropy is computed over all logits at once (chunks save ~{saved:.1f} GiB)",
                                 K_ENTROPY_CHUNKING))
    if where == "update" and inp.entropy_in_update and not inp.entropy_checkpointing:
        out.append(MemoryWarning(where, f"entropy_coeff != 0 keeps entropy's copies for the backward "
                                        f"({est.gib('entropy copies'):.1f} GiB)", K_ENTROPY_CKPT))
    resident = est.gib("params (FSDP shard)") + est.gib("Adam m+v (FSDP shard)") + est.gib("grads (FSDP shard)")
    if resident > 0.25 * inp.gpu_gib:
        out.append(MemoryWarning(where, f"the FSDP shard alone is {resident:.1f} GiB over {inp.fsdp_size} GPUs",
                                 f"{K_N_GPUS} (more shards), or {K_OPT_OFFLOAD}"))
    return out


def _vllm_warnings(inp: EstimateInputs, v: VllmEstimate) -> tuple[list[MemoryWarning], list[MemoryWarning]]:
    """(warnings, notes) of the generation phase."""
    warnings: list[MemoryWarning] = []
    notes: list[MemoryWarning] = []
    if v.rollout_total_gib > inp.gpu_gib:
        # vLLM refuses to start when the free memory is below utilization x GPU; Adam's states only exist after
        # the first optimizer step, so a run may start and then run out of memory when vLLM wakes up in step 2
        free_share = (inp.gpu_gib - v.trainer_resident_gib - TRAINER_RUNTIME_GIB) / inp.gpu_gib
        warnings.append(MemoryWarning(
            "vLLM", f"its share {v.share_gib:.1f} GiB + the trainer's resident shard {v.trainer_resident_gib:.1f} "
                    f"GiB + runtime {TRAINER_RUNTIME_GIB:.0f} GiB = {v.rollout_total_gib:.1f} GiB > "
                    f"{inp.gpu_gib:.0f} GiB: vLLM fails to start, or to wake up once Adam's states exist (or "
                    f"offload the trainer: {K_PARAM_OFFLOAD}, {K_OPT_OFFLOAD})",
            K_GPU_UTIL, math.floor(max(free_share, 0) * 100) / 100))
    if v.kv_room_gib <= 0 or v.full_sequences_in_kv < 1:
        warnings.append(MemoryWarning(
            "vLLM", f"KV room {max(v.kv_room_gib, 0):.1f} GiB holds {v.kv_capacity_tokens:,} tokens, less than one "
                    f"sequence of {inp.sequence_length:,}: vLLM will not start", f"{K_GPU_UTIL} (raise) or {K_TP}"))
    elif v.full_sequences_in_kv < v.concurrent_sequences:
        notes.append(MemoryWarning(
            "vLLM", f"KV room {v.kv_room_gib:.1f} GiB holds {v.full_sequences_in_kv} full-length sequences of the "
                    f"{v.concurrent_sequences} an engine runs at once: vLLM queues/preempts when many run long "
                    f"(slower, not out of memory)", f"{K_GPU_UTIL} (raise, if generation still fits) or {K_TP}"))
    return warnings, notes


def estimate(shape: ModelShape, inp: EstimateInputs) -> MemoryEstimate:
    """Estimate every pass and the vLLM engine for ``shape`` under ``inp``; warnings name the knob to turn."""
    passes = [log_prob_pass(shape, inp)]
    if inp.ref_log_prob_tokens:
        passes.append(ref_pass(shape, inp))
    passes.append(update_pass(shape, inp))
    warnings: list[MemoryWarning] = []
    checks = {"log-prob": (log_prob_pass, inp.log_prob_tokens_knob), "ref": (ref_pass, inp.ref_tokens_knob),
              "update": (update_pass, inp.update_tokens_knob)}
    for est in passes:
        pass_fn, knob = checks[est.name]
        warnings += _pass_warnings(shape, inp, est, est.name, pass_fn, knob)
    v = vllm_estimate(shape, inp) if inp.rollout_name == "vllm" else None
    notes: list[MemoryWarning] = []
    if v is not None:
        vllm_warnings, notes = _vllm_warnings(inp, v)
        warnings += vllm_warnings
    return MemoryEstimate(model=shape, inputs=inp, passes=tuple(passes), vllm=v, warnings=tuple(warnings),
                          notes=tuple(notes))


def shape_for_model_path(model_path: str) -> tuple[ModelShape | None, str]:
    """The model's shape: its config.json when ``model_path`` is a local directory, else a built-in shape whose
    name matches, else (None, reason). Never raises."""
    path = Path(str(model_path)).expanduser()
    if path.is_dir():
        try:
            return model_shape_from_config_json(path), ""
        except ModelConfigError as exc:
            shape = builtin_shape(str(model_path))
            return (shape, "") if shape else (None, str(exc))
    shape = builtin_shape(str(model_path))
    if shape is not None:
        return replace(shape, name=f"{shape.name} [built-in shape for {model_path}]"), ""
    return None, (f"model {model_path!r} is neither a local directory with config.json nor a known model "
                  f"({', '.join(sorted({s.name for _, s in BUILTIN_SHAPES}))})")


def estimate_or_reason(cfg: Any, gpu_gib: float | None = None) -> tuple[MemoryEstimate | None, str]:
    """Estimate a composed verl config: ``(estimate, "")``, or ``(None, reason)`` when the model's shape is
    unknown or the config cannot be read. Never raises: an estimate never stops a run."""
    try:
        model_path = _select(cfg, "actor_rollout_ref.model.path", "")
        shape, reason = shape_for_model_path(str(model_path))
        if shape is None:
            return None, reason
        return estimate(shape, inputs_from_config(cfg, gpu_gib)), ""
    except Exception as exc:  # noqa: BLE001 - the estimate is advice; a bad key must not stop the run
        return None, f"memory estimate failed: {type(exc).__name__}: {exc}"


def estimate_from_config(cfg: Any, gpu_gib: float | None = None) -> MemoryEstimate | None:
    """The estimate of a composed verl config, or None when it cannot be made (the reason:
    :func:`estimate_or_reason`). Never raises. ``gpu_gib`` None: :func:`detect_gpu_gib`."""
    return estimate_or_reason(cfg, gpu_gib)[0]


def preflight_memory_lines(cfg: Any, gpu_gib: float | None = None, full_table: bool = False) -> list[str]:
    """Lines for the preflight: a one-line summary (or the full table) and one line per warning; when the model is
    unknown, one line with the reason. Never raises."""
    est, reason = estimate_or_reason(cfg, gpu_gib)
    if est is None:
        return [f"memory estimate skipped: {reason}"]
    if full_table:
        return format_estimate(est).splitlines()
    return [summary_line(est)] + [f"  WARNING (estimate): {w}" for w in est.warnings]


# ---------------------------------------------------------------------------------------------------------------
# formatting


#: row order of :func:`format_estimate`'s table: resident state first, then what grows with the tokens
COMPONENT_ORDER = ("params (FSDP shard)", "grads (FSDP shard)", "Adam m+v (FSDP shard)",
                   "gathered weights (bf16 units)", "unsharded grads (fp32)", "activations", "logits (T x V)",
                   "logits + their grad", "entropy copies",
                   "logits / temperature", "CUDA/NCCL runtime (rough)", "vLLM while the trainer runs")


def summary_line(est: MemoryEstimate) -> str:
    """One line: every phase's estimated peak per GPU."""
    parts = [f"{p.name} {p.total_gib:.1f}" for p in est.passes]
    if est.vllm is not None:
        parts.append(f"generation {est.vllm.rollout_total_gib:.1f}")
    verdict = "fits" if est.fits else f"{len(est.warnings)} warning(s)"
    return (f"memory estimate (not measured), GiB per {est.inputs.gpu_gib:.0f}-GiB GPU: {', '.join(parts)}; "
            f"{verdict}")


def format_estimate(est: MemoryEstimate) -> str:
    """A small table (components x passes, GiB per GPU), the vLLM lines and the warnings, labelled as estimates."""
    inp, m = est.inputs, est.model
    lines = [
        f"MEMORY ESTIMATE (not measured), GiB per GPU of {inp.gpu_gib:.1f} GiB",
        f"model: {m.name}: {m.param_count / 1e9:.2f} B params, hidden {m.hidden_size}, {m.num_layers} layers, "
        f"vocab {m.vocab_size:,}",
        f"{inp.n_gpus} GPU(s), FSDP shards {inp.fsdp_size}; prompt {inp.prompt_length:,} + response "
        f"{inp.response_length:,} tokens; gradient checkpointing {'on' if inp.gradient_checkpointing else 'OFF'}; "
        f"entropy chunking {'on' if inp.entropy_chunking else 'OFF'}",
        "",
    ]
    names: list[str] = []
    for p in est.passes:
        names += [c.name for c in p.components if c.name not in names]
    names.sort(key=lambda n: COMPONENT_ORDER.index(n) if n in COMPONENT_ORDER else len(COMPONENT_ORDER))
    width = max(len(n) for n in names + ["tokens per micro-batch"])
    header = f"{'':<{width}}" + "".join(f"{p.name:>11}" for p in est.passes)
    lines += [header, f"{'tokens per micro-batch':<{width}}" + "".join(f"{p.tokens:>11,}" for p in est.passes)]
    for name in names:
        cells = "".join(f"{p.gib(name):>11.1f}" if any(c.name == name for c in p.components) else f"{'-':>11}"
                        for p in est.passes)
        lines.append(f"{name:<{width}}{cells}")
    lines.append(f"{'TOTAL':<{width}}" + "".join(f"{p.total_gib:>11.1f}" for p in est.passes))
    v = est.vllm
    if v is not None:
        lines += [
            "",
            f"vLLM (TP {v.tp}, gpu_memory_utilization {v.utilization:g} = {v.share_gib:.1f} GiB): weights "
            f"{v.weights_gib:.1f} + activations {v.activations_gib:.1f} + non-torch {VLLM_NON_TORCH_GIB:.0f}, "
            f"KV room {v.kv_room_gib:.1f} GiB = {v.kv_capacity_tokens:,} tokens "
            f"({v.kv_bytes_per_token / 1024:.0f} KiB/token) = {v.full_sequences_in_kv} full-length sequences; "
            f"an engine runs up to {v.concurrent_sequences} at once",
            f"while generating: vLLM {v.share_gib:.1f} + trainer resident {v.trainer_resident_gib:.1f} + runtime "
            f"{TRAINER_RUNTIME_GIB:.0f} = {v.rollout_total_gib:.1f} GiB",
        ]
    elif inp.rollout_name != "vllm":
        lines += ["", f"rollout {inp.rollout_name!r}: not estimated (only vLLM is)"]
    lines += ["", "counted: eager PyTorch copies (torch.compile may fuse some entropy temporaries away), flash-attn's "
                  "cross-entropy" + ("" if inp.flash_attn_cross_entropy else " OFF (3 logits copies in the update)")
              + f", rough CUDA/NCCL constants; formulas: lapo_verl/memory_estimate.py", ""]
    lines += [f"note (estimate): {n}" for n in est.notes]
    if est.warnings:
        lines += [f"WARNING (estimate): {w}" for w in est.warnings]
    else:
        lines.append("no warnings: every estimate fits the GPU")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# the README's table for the paper's settings

PAPER_MODELS: tuple[tuple[str, str], ...] = (
    ("1.5B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"),
    ("7B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"),
)
PAPER_RESPONSE_LENGTHS: tuple[int, ...] = (4096, 8192, 16384, 32768)
PAPER_GPU_COUNTS: tuple[int, ...] = (4, 8)


def paper_settings_rows(base_cfg: Any, gpu_gib: float = DEFAULT_GPU_GIB) -> list[dict[str, Any]]:
    """Estimates for the paper's models x response lengths x GPU counts, varying a composed recipe config
    (the token budgets follow data.max_response_length through the recipe's interpolations)."""
    from omegaconf import OmegaConf

    rows = []
    for label, model in PAPER_MODELS:
        for response in PAPER_RESPONSE_LENGTHS:
            for gpus in PAPER_GPU_COUNTS:
                cfg = OmegaConf.create(OmegaConf.to_container(base_cfg, resolve=False))
                OmegaConf.update(cfg, "actor_rollout_ref.model.path", model)
                OmegaConf.update(cfg, "data.max_response_length", response)
                OmegaConf.update(cfg, "trainer.n_gpus_per_node", gpus)
                OmegaConf.update(cfg, "trainer.nnodes", 1)
                est = estimate(builtin_shape(model), inputs_from_config(cfg, gpu_gib))
                rows.append({"model": label, "response": response, "gpus": gpus, "estimate": est})
    return rows


def format_paper_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`paper_settings_rows` (GiB per GPU, estimates)."""
    out = ["| model | response | GPUs | update (tokens) | log-prob (tokens) | ref | generation: vLLM + trainer "
           "| KV room: full-length seqs / concurrent | fits? |",
           "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        est: MemoryEstimate = row["estimate"]
        upd, lp, ref = est.pass_named("update"), est.pass_named("log-prob"), est.pass_named("ref")
        v = est.vllm
        gen = f"{v.rollout_total_gib:.1f}" if v else "-"
        kv = f"{v.kv_room_gib:.1f} GiB: {v.full_sequences_in_kv} / {v.concurrent_sequences}" if v else "-"
        verdict = "yes" if est.fits else "NO: " + ", ".join(sorted({w.where for w in est.warnings}))
        out.append(f"| {row['model']} | {row['response'] // 1024}k | {row['gpus']} | "
                   f"{upd.total_gib:.1f} ({upd.tokens:,}) | {lp.total_gib:.1f} ({lp.tokens:,}) | "
                   f"{ref.total_gib:.1f} | {gen} | {kv} | {verdict} |" if ref else
                   f"| {row['model']} | {row['response'] // 1024}k | {row['gpus']} | "
                   f"{upd.total_gib:.1f} ({upd.tokens:,}) | {lp.total_gib:.1f} ({lp.tokens:,}) | - | {gen} | {kv} | "
                   f"{verdict} |")
    return "\n".join(out)
