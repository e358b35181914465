"""Rollout backend ``hf``: ``transformers`` ``generate`` behind verl's token-in/token-out server interface.

Selected with ``actor_rollout_ref.rollout.name=hf``; registered in verl's two rollout registries
(``verl/workers/rollout/base.py:89`` ``_ROLLOUT_REGISTRY`` and ``verl/workers/rollout/replica.py:355``
``RolloutReplicaRegistry``) by :func:`lapo_verl.cpu_backend.register_if_selected`. For laptops, tests and
debugging with tiny models; not for real training.

Three pieces, mirroring verl's vLLM backend:

* :class:`HFRolloutServer` -- one Ray actor per replica holding a ``transformers`` causal LM. ``generate``
  returns :class:`~verl.workers.rollout.replica.TokenOutput` (response token ids and, when asked, their
  log-probs under ``softmax(logits / temperature)``, the distribution the actor scores with). Concurrent
  requests are sampled together in batches of up to ``rollout.max_num_seqs`` (one forward pass per token for
  the whole batch); ``update_weights`` waits for the running batch.
* :class:`HFReplica` -- the ``RolloutReplica`` the trainer's ``LLMServerManager`` builds
  (``verl/workers/rollout/llm_server.py:393``); it starts the server actor.
* :class:`HFServerAdapter` -- the ``BaseRollout`` built in every trainer worker
  (``verl/workers/engine_workers.py:667``); on weight sync it drains the full-tensor generator on every rank
  (the generator may run collectives) and the replica's first rank ships the state dict to its server.

Supported: the ``sync`` V1 trainer in hybrid mode with ``checkpoint_engine.backend=naive`` (the default),
single-turn and multi-turn text agent loops, any ``tensor_model_parallel_size`` that divides the trainer world
size (each replica still runs one process). Not supported: multimodal input, LoRA adapter sync
(``model.lora.merge=True`` works), standalone/colocated rollout, partial rollout (``abort_all_requests`` has
nothing to abort: requests are short and run to completion).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Generator, Optional

import ray
import torch
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, TokenOutput

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "WARN"))

ROLLOUT_NAME = "hf"


def server_actor_name(replica_rank: int, prefix: str = f"{ROLLOUT_NAME}_", suffix: str = "") -> str:
    """Ray actor name of a replica's server (the adapter finds its server by this name)."""
    return f"{prefix}server_{replica_rank}_0{suffix}"


def _to_dtype(name: Any) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    table = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    table.update({"float32": torch.float32, "fp32": torch.float32, "float": torch.float32})
    return table.get(str(name).replace("torch.", ""), torch.float32)


class HFRolloutServer:
    """Token-in/token-out generation server over ``transformers`` (wrapped with ``ray.remote`` by :class:`HFReplica`).

    Args:
        config: the rollout config (``RolloutConfig`` or its DictConfig).
        model_config: the model config (``HFModelConfig`` or the ``actor_rollout_ref.model`` DictConfig).
        replica_rank: rank of the replica this server belongs to (seeds sampling).
    """

    def __init__(self, config: Any, model_config: Any, replica_rank: int = 0):
        from transformers import AutoModelForCausalLM
        from verl.utils.config import omega_conf_to_dataclass
        from verl.workers.config import HFModelConfig, RolloutConfig

        self.config = config if isinstance(config, RolloutConfig) else omega_conf_to_dataclass(config, RolloutConfig)
        if not isinstance(model_config, HFModelConfig):
            model_config = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        self.model_config = model_config
        self.replica_rank = replica_rank
        self.global_steps: Optional[int] = None
        self.weight_versions = 0
        self._lock = asyncio.Lock()
        # request batching (see _batcher): created lazily inside the actor's event loop
        self._queue: Optional[asyncio.Queue] = None
        self._batch_task: Optional[asyncio.Task] = None
        self._max_batch = max(1, int(getattr(self.config, "max_num_seqs", 0) or 1))
        self._gather_window_s = 0.02

        dtype = _to_dtype(getattr(self.config, "dtype", "float32"))
        self.model = AutoModelForCausalLM.from_pretrained(
            model_config.local_path,
            dtype=dtype,
            trust_remote_code=model_config.trust_remote_code,
            attn_implementation="sdpa",
        ).eval()
        self._generator = torch.Generator().manual_seed(int(getattr(self.config, "seed", 0) or 0) + replica_rank)

        gen_cfg = getattr(self.model, "generation_config", None)
        eos = getattr(gen_cfg, "eos_token_id", None)
        if eos is None:
            eos = getattr(model_config.tokenizer, "eos_token_id", None)
        self.eos_token_ids: list[int] = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
        pad = getattr(model_config.tokenizer, "pad_token_id", None)
        self.pad_token_id = pad if pad is not None else (self.eos_token_ids[0] if self.eos_token_ids else 0)
        max_pos = getattr(self.model.config, "max_position_embeddings", None)
        self.max_model_len = self.config.max_model_len or max_pos or (
            self.config.prompt_length + self.config.response_length
        )

    # ------------------------------------------------------------------ generation

    def _max_new_tokens(self, prompt_len: int, sampling_params: dict[str, Any]) -> int:
        if "max_tokens" in sampling_params:
            wanted = int(sampling_params["max_tokens"])
        elif "max_new_tokens" in sampling_params:
            wanted = int(sampling_params["max_new_tokens"])
        else:  # same default as verl's vLLM server
            wanted = min(
                self.config.response_length, self.config.prompt_length + self.config.response_length - prompt_len
            )
        room = self.max_model_len - prompt_len
        if room < 1:
            raise ValueError(f"prompt of {prompt_len} tokens leaves no room within max_model_len={self.max_model_len}")
        return max(1, min(wanted, room))

    @staticmethod
    def _sampling_key(sampling_params: dict[str, Any], do_sample: bool) -> tuple:
        """Requests that share this key can be sampled in one batch (same filters, same temperature)."""
        temperature = float(sampling_params.get("temperature", 1.0) or 0.0)
        greedy = temperature <= 0.0 or not do_sample
        return (
            greedy,
            temperature,
            int(sampling_params.get("top_k", -1) or -1),
            float(sampling_params.get("top_p", 1.0) or 1.0),
            float(sampling_params.get("repetition_penalty", 1.0) or 1.0),
            bool(sampling_params.get("ignore_eos", False)),
        )

    @torch.no_grad()
    def _sample(self, prompt_ids: list[int], sampling_params: dict[str, Any]) -> tuple[list[int], list[float]]:
        """One request: (token ids, log-probs under softmax(logits / T)). See :meth:`_sample_batch`."""
        return self._sample_batch([prompt_ids], sampling_params)[0]

    @torch.no_grad()
    def _sample_batch(
        self, prompts: list[list[int]], sampling_params: dict[str, Any], max_new: Optional[list[int]] = None
    ) -> list[tuple[list[int], list[float]]]:
        """Autoregressive sampling of several prompts at once (left padding, one KV cache).

        Every prompt gets its own token budget (:meth:`_max_new_tokens`) and stops at its own EOS; the batch
        stops when every row has. Log-probs are taken under ``softmax(logits / T)`` before top-k/top-p, the
        distribution the actor scores with. ``max_new`` gives each row its own budget (default: from
        ``sampling_params``). Rows are independent: padding is masked out of attention and
        positions start at 0 for every prompt.
        """
        greedy, temperature, top_k, top_p, repetition_penalty, ignore_eos = self._sampling_key(
            sampling_params, bool(getattr(self.config, "do_sample", True))
        )
        eos = torch.tensor([] if ignore_eos else self.eos_token_ids, dtype=torch.long)
        batch = len(prompts)
        if max_new is None:
            max_new = [self._max_new_tokens(len(p), sampling_params) for p in prompts]
        budgets = torch.tensor(max_new)
        width = max(len(p) for p in prompts)
        input_ids = torch.full((batch, width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((batch, width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            input_ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
            attention[row, width - len(prompt):] = 1
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        vocab = None
        seen = None
        alive = torch.ones(batch, dtype=torch.bool)
        tokens: list[list[int]] = [[] for _ in range(batch)]
        log_probs: list[list[float]] = [[] for _ in range(batch)]
        past = None
        for step in range(int(budgets.max())):
            out = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                             past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = out.logits[:, -1].float()
            if vocab is None:
                vocab = logits.shape[-1]
                if repetition_penalty != 1.0:
                    seen = torch.zeros((batch, vocab), dtype=torch.bool)
                    for row, prompt in enumerate(prompts):
                        seen[row, torch.tensor(prompt, dtype=torch.long)] = True
            scaled = logits / (temperature if temperature > 0 else 1.0)
            logp_all = torch.log_softmax(scaled, dim=-1)
            if greedy:
                chosen = torch.argmax(logits, dim=-1)
            else:
                filt = scaled.clone()
                if seen is not None:
                    penalised = torch.where(filt > 0, filt / repetition_penalty, filt * repetition_penalty)
                    filt = torch.where(seen, penalised, filt)
                if 0 < top_k < vocab:
                    kth = torch.topk(filt, top_k, dim=-1).values[:, -1:]
                    filt = filt.masked_fill(filt < kth, float("-inf"))
                if top_p < 1.0:
                    sorted_logits, order = torch.sort(filt, descending=True, dim=-1)
                    sorted_probs = torch.softmax(sorted_logits, dim=-1)
                    drop_sorted = sorted_probs.cumsum(-1) - sorted_probs > top_p  # keep the token crossing top_p
                    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
                    filt = filt.masked_fill(drop, float("-inf"))
                chosen = torch.multinomial(torch.softmax(filt, dim=-1), 1, generator=self._generator).squeeze(-1)
            chosen_logp = logp_all.gather(-1, chosen[:, None]).squeeze(-1)
            for row in torch.nonzero(alive).flatten().tolist():
                tokens[row].append(int(chosen[row]))
                log_probs[row].append(float(chosen_logp[row]))
            if seen is not None:
                seen[torch.arange(batch), chosen] = True
            finished = torch.isin(chosen, eos) | (budgets <= step + 1)
            alive &= ~finished
            if not bool(alive.any()):
                break
            input_ids = torch.where(alive, chosen, torch.full_like(chosen, self.pad_token_id))[:, None]
            attention = torch.cat([attention, torch.ones((batch, 1), dtype=torch.long)], dim=-1)
            positions = positions[:, -1:] + 1
        return list(zip(tokens, log_probs, strict=True))

    async def _batcher(self) -> None:
        """Collect concurrent ``generate`` calls into batches of up to ``rollout.max_num_seqs`` requests.

        verl's agent loop sends all samples of a step concurrently; sampling them together is what makes a CPU
        step fast (one forward pass per token for the whole batch instead of one per request). Requests are
        grouped by their sampling settings; a batch runs once no new request arrived for a few milliseconds.
        """
        while True:
            first = await self._queue.get()
            pending = [first]
            while True:  # gather the burst: the agent loop submits a step's requests within milliseconds
                try:
                    pending.append(await asyncio.wait_for(self._queue.get(), timeout=self._gather_window_s))
                except asyncio.TimeoutError:
                    break
            groups: dict[tuple, list] = {}
            for item in pending:
                groups.setdefault(item[0], []).append(item)
            for items in groups.values():
                for start in range(0, len(items), self._max_batch):
                    chunk = items[start:start + self._max_batch]
                    try:
                        async with self._lock:
                            results = await asyncio.to_thread(
                                self._sample_batch, [it[1] for it in chunk], chunk[0][2],
                                [self._max_new_tokens(len(it[1]), it[2]) for it in chunk],
                            )
                    except Exception as exc:  # every waiting request sees the real error
                        for it in chunk:
                            if not it[3].done():
                                it[3].set_exception(exc)
                        continue
                    for it, result in zip(chunk, results, strict=True):
                        if not it[3].done():
                            it[3].set_result(result)

    async def generate(
        self,
        request_id: str,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        image_data: Optional[list[Any]] = None,
        video_data: Optional[list[Any]] = None,
        **kwargs: Any,
    ) -> TokenOutput:
        if image_data or video_data or kwargs.get("audio_data"):
            raise NotImplementedError("the hf CPU rollout is text-only")
        prompt_ids = [int(t) for t in prompt_ids]
        params = dict(sampling_params)
        self._max_new_tokens(len(prompt_ids), params)  # fail this request, not the batch, on a too-long prompt
        if self._batch_task is None or self._batch_task.done():
            self._queue = asyncio.Queue()
            self._batch_task = asyncio.get_running_loop().create_task(self._batcher())
        future = asyncio.get_running_loop().create_future()
        key = self._sampling_key(params, bool(getattr(self.config, "do_sample", True)))
        await self._queue.put((key, prompt_ids, params, future))
        tokens, log_probs = await future
        return TokenOutput(
            token_ids=tokens,
            log_probs=log_probs if sampling_params.get("logprobs") else None,
            stop_reason="completed",
            num_preempted=0,
            extra_fields={"global_steps": self.global_steps},
        )

    # ------------------------------------------------------------------ weights

    async def update_weights(self, state_dict: dict[str, torch.Tensor], global_steps: Optional[int] = None) -> dict:
        """Load trainer weights (full tensors keyed by HF parameter names). Returns load statistics."""
        async with self._lock:
            own = self.model.state_dict()
            unknown = [k for k in state_dict if k not in own]
            if unknown:
                raise KeyError(f"hf rollout got {len(unknown)} unknown parameter names, e.g. {unknown[:3]}")
            with torch.no_grad():
                for name, tensor in state_dict.items():
                    own[name].copy_(tensor.to(own[name].dtype))
            self.weight_versions += 1
        if global_steps is not None:
            self.global_steps = global_steps
        stats = {"loaded": len(state_dict), "total": len(own), "version": self.weight_versions}
        logger.info("hf rollout replica %d: loaded %d/%d tensors", self.replica_rank, len(state_dict), len(own))
        return stats

    async def get_weight_info(self) -> dict:
        """Version counter and a checksum of the weights (used by tests to see a sync arrive)."""
        with torch.no_grad():
            checksum = float(sum(p.float().abs().sum() for p in self.model.parameters()))
        return {"version": self.weight_versions, "checksum": checksum, "global_steps": self.global_steps}

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    # ------------------------------------------------------------------ lifecycle (nothing to free on CPU)

    async def wake_up(self, tags: Optional[list[str]] = None) -> None:
        return None

    async def sleep(self) -> None:
        return None

    async def clear_kv_cache(self) -> None:
        return None

    async def release_kv_cache(self) -> None:
        return None

    async def resume_kv_cache(self) -> None:
        return None

    async def abort_all_requests(self, reject_request: bool = False) -> dict[str, Any]:
        return {"aborted_count": 0, "request_ids": []}

    async def resume_generation(self) -> None:
        return None

    async def start_profile(self, **kwargs: Any) -> None:
        return None

    async def stop_profile(self) -> None:
        return None


class HFReplica(RolloutReplica):
    """One ``hf`` rollout replica = one :class:`HFRolloutServer` actor on the node of the replica's first worker."""

    def _get_server_name_prefix(self) -> str:
        return f"{ROLLOUT_NAME}_"

    async def launch_servers(self) -> None:
        if self.workers:
            node_id = await self.workers[0].__ray_call__.remote(lambda _self: ray.get_runtime_context().get_node_id())
        else:
            node_id = ray.get_runtime_context().get_node_id()
        if self.is_reward_model:
            name = f"{ROLLOUT_NAME}_server_reward_{self.replica_rank}_0{self.name_suffix}"
        elif self.is_teacher_model:
            name = f"{ROLLOUT_NAME}_server_teacher_{self.replica_rank}_0{self.name_suffix}"
        else:
            name = server_actor_name(self.replica_rank, suffix=self.name_suffix)
        server = (
            ray.remote(HFRolloutServer)
            .options(
                name=name,
                num_cpus=0,
                max_concurrency=self.max_concurrency,
                scheduling_strategy=ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
                    node_id=node_id, soft=False
                ),
            )
            .remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        )
        await server.get_weight_info.remote()  # wait until the model is loaded
        self.servers = [server]
        self._server_handle = server
        # There is no HTTP server; the address only has to be unique (it keys the load balancer's table).
        self._server_address = f"{ROLLOUT_NAME}://{name}"


class HFServerAdapter(BaseRollout):
    """``BaseRollout`` in each trainer worker: forwards weight syncs to the replica's :class:`HFRolloutServer`."""

    def __init__(self, config, model_config, device_mesh, replica_rank: int = -1, **kwargs):
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", 0))
        rollout_world_size = (
            self.config.tensor_model_parallel_size
            * self.config.data_parallel_size
            * self.config.pipeline_model_parallel_size
        )
        self.replica_rank = rank // rollout_world_size if replica_rank == -1 else replica_rank
        self.is_leader = rank % rollout_world_size == 0
        self.server_handle = None

    def _server(self):
        if self.server_handle is None:
            self.server_handle = ray.get_actor(server_actor_name(self.replica_rank))
        return self.server_handle

    async def resume(self, tags: list[str]):
        return None

    async def release(self):
        return None

    @torch.no_grad()
    async def update_weights(
        self,
        weights: Generator[tuple[str, torch.Tensor], None, None],
        wire_format: str = "named_tensors",
        global_steps: Optional[int] = None,
        peft_config: Any = None,
        **kwargs,
    ):
        if wire_format != "named_tensors":
            raise NotImplementedError(f"hf rollout supports wire_format='named_tensors' only, got {wire_format!r}")
        if peft_config is not None:
            raise NotImplementedError("hf rollout cannot sync LoRA adapters; set actor_rollout_ref.model.lora.merge=True")
        start = time.time()
        state: dict[str, torch.Tensor] = {}
        for name, tensor in weights:  # every rank drains the generator: producing full tensors may be collective
            if self.is_leader:
                state[name] = tensor.detach().to("cpu", copy=True)
        if self.is_leader:
            await self._server().update_weights.remote(state, global_steps=global_steps)
            logger.info("hf rollout: synced %d tensors to replica %d in %.2fs", len(state), self.replica_rank,
                        time.time() - start)

    def generate_sequences(self, prompts):
        raise NotImplementedError("the hf rollout serves the agent loop only (async server mode)")


def load_replica_class() -> type[RolloutReplica]:
    """Loader for ``RolloutReplicaRegistry`` (verl calls it lazily)."""
    return HFReplica
