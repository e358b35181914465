"""Generation backends for evaluation: vLLM (GPU) and transformers (CPU or GPU), one interface.

Both take prompt token ids (the prompt is rendered once, with the model's tokenizer, by
:func:`render_prompt`) and return, per prompt, ``n`` :class:`Completion` objects holding the
generated token ids, the decoded text and why generation stopped. Token counts are
``len(Completion.token_ids)``: the generated ids, including the final EOS when generation stopped
on it (what vLLM reports and what verl counts as response length).

vLLM is imported lazily (it is not installed on CPU machines).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

__all__ = [
    "SamplingConfig",
    "Completion",
    "ModelLoadError",
    "load_tokenizer",
    "render_prompt",
    "derive_seed",
    "TransformersBackend",
    "VLLMBackend",
    "make_backend",
    "vllm_available",
]


class ModelLoadError(RuntimeError):
    """The model directory cannot be used (no tokenizer, no chat template, no weights...)."""


@dataclass(frozen=True)
class SamplingConfig:
    """The paper's evaluation sampling: T=0.6, top-p=0.95, up to 32,768 new tokens."""

    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 32768
    seed: int = 0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens <= 0:
            raise ValueError(f"max_new_tokens must be positive, got {self.max_new_tokens}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" (EOS / stop token) or "length" (hit max_new_tokens)

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


def derive_seed(seed: int, *keys: Any) -> int:
    """A 31-bit seed from a base seed and keys (e.g. benchmark, problem id): stable across runs,
    so a resumed run samples a problem exactly as an uninterrupted one would (same backend)."""
    h = hashlib.sha256(repr((int(seed),) + tuple(str(k) for k in keys)).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")


def load_tokenizer(model_dir: str | os.PathLike) -> Any:
    """The model's tokenizer, or :class:`ModelLoadError` with a clear message."""
    path = Path(model_dir)
    if path.exists() and not path.is_dir():
        raise ModelLoadError(f"--model must be a model directory, got a file: {path}")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path} has no config.json: not a Hugging Face model directory")
        if not any((path / f).is_file() for f in _TOKENIZER_FILES):
            raise ModelLoadError(
                f"{path} has no tokenizer files ({', '.join(_TOKENIZER_FILES)}); save the tokenizer "
                f"next to the model (tokenizer.save_pretrained(dir)) — token counts need the model's own tokenizer"
            )
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(model_dir))
    except Exception as e:  # noqa: BLE001 - turn any loader failure into one clear error
        raise ModelLoadError(f"cannot load a tokenizer from {model_dir}: {type(e).__name__}: {e}") from e
    return tok


def render_prompt(tokenizer: Any, problem: str, style: str = "chat") -> tuple[str, list[int]]:
    """Prompt text and token ids for one problem.

    ``style="chat"``: the model's own chat template; ``style="paper"``: the paper's raw format
    (:data:`lapo_verl.prompts.PAPER_CHAT_TEMPLATE`). No plan sentence is added (LAPO-I is evaluated
    without one; the runner measures whether the model states one itself).
    """
    from lapo_verl.prompts import PAPER_CHAT_TEMPLATE, build_messages

    messages = build_messages(problem, style=style)
    kwargs: dict[str, Any] = {}
    if style == "paper":
        kwargs["chat_template"] = PAPER_CHAT_TEMPLATE
    elif not getattr(tokenizer, "chat_template", None):
        raise ModelLoadError(
            "the tokenizer has no chat template; use --prompt-style paper (the paper's raw format)"
        )
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **kwargs)
    if not isinstance(text, str):
        text = text[0]
    # The template already contains any BOS it wants: do not add special tokens again.
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text, list(ids)


def _eos_ids(tokenizer: Any, model_generation_config: Any = None) -> list[int]:
    ids: list[int] = []
    cand = getattr(model_generation_config, "eos_token_id", None) if model_generation_config is not None else None
    for value in (cand, getattr(tokenizer, "eos_token_id", None)):
        if value is None:
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None and int(v) not in ids:
                ids.append(int(v))
    return ids


class TransformersBackend:
    """``model.generate`` in batches of ``batch_size`` sequences (left padding). Runs on CPU."""

    name = "transformers"

    def __init__(
        self,
        model_dir: str | os.PathLike,
        tokenizer: Any,
        *,
        device: str | None = None,
        dtype: str = "auto",
        batch_size: int = 16,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.tokenizer = tokenizer
        self.batch_size = int(batch_size)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype == "auto":
            torch_dtype: Any = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        else:
            torch_dtype = getattr(torch, dtype)
        try:
            self.model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch_dtype)
        except Exception as e:  # noqa: BLE001
            raise ModelLoadError(f"cannot load the model from {model_dir}: {type(e).__name__}: {e}") from e
        self.model.to(self.device).eval()
        self.eos_ids = _eos_ids(tokenizer, getattr(self.model, "generation_config", None))
        if not self.eos_ids:
            raise ModelLoadError("neither the tokenizer nor the model's generation config defines an EOS token")
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = int(pad) if pad is not None else self.eos_ids[0]

    def generate(
        self, prompts: Sequence[Sequence[int]], n: int, sampling: SamplingConfig, seeds: Sequence[int]
    ) -> list[list[Completion]]:
        import torch

        requests = [(i, j) for i in range(len(prompts)) for j in range(n)]
        results: list[list[Completion | None]] = [[None] * n for _ in prompts]
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start : start + self.batch_size]
            torch.manual_seed(derive_seed(seeds[chunk[0][0]], chunk[0][1], len(chunk)))
            width = max(len(prompts[i]) for i, _ in chunk)
            input_ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, (i, _) in enumerate(chunk):
                ids = list(prompts[i])
                input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
                attention[row, width - len(ids) :] = 1
            gen_kwargs: dict[str, Any] = dict(
                max_new_tokens=sampling.max_new_tokens,
                pad_token_id=self.pad_id,
                eos_token_id=self.eos_ids,
            )
            if sampling.temperature > 0:
                # top_k=0 switches off transformers' default top-k of 50 (vLLM has no top-k by default).
                gen_kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
            else:
                gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            with torch.no_grad():
                out = self.model.generate(
                    input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device), **gen_kwargs
                )
            generated = out[:, width:].tolist()
            for row, (i, j) in enumerate(chunk):
                ids = generated[row]
                finish = "length"
                for k, t in enumerate(ids):
                    if t in self.eos_ids:
                        ids, finish = ids[: k + 1], "stop"
                        break
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                results[i][j] = Completion(text=text, token_ids=[int(t) for t in ids], finish_reason=finish)
        return [[c for c in row if c is not None] for row in results]


class VLLMBackend:
    """vLLM offline engine; one ``SamplingParams`` (with its own seed) per prompt, ``n`` samples each."""

    name = "vllm"

    def __init__(
        self,
        model_dir: str | os.PathLike,
        tokenizer: Any,
        *,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        seed: int = 0,
        **llm_kwargs: Any,
    ) -> None:
        try:
            from vllm import LLM
        except ImportError as e:
            raise ModelLoadError("the vllm backend needs vLLM (pip install 'lapo-verl[gpu]')") from e
        self.tokenizer = tokenizer
        kwargs: dict[str, Any] = dict(
            model=str(model_dir),
            tokenizer=str(model_dir),
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            seed=seed,
            enable_prefix_caching=True,
        )
        if max_model_len:
            kwargs["max_model_len"] = int(max_model_len)
        kwargs.update(llm_kwargs)
        self.llm = LLM(**kwargs)

    def generate(
        self, prompts: Sequence[Sequence[int]], n: int, sampling: SamplingConfig, seeds: Sequence[int]
    ) -> list[list[Completion]]:
        from vllm import SamplingParams

        try:
            from vllm.inputs import TokensPrompt

            inputs: list[Any] = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        except ImportError:  # pragma: no cover - very old vLLM
            inputs = [{"prompt_token_ids": list(p)} for p in prompts]
        params = [
            SamplingParams(
                n=n,
                temperature=sampling.temperature,
                top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
                max_tokens=sampling.max_new_tokens,
                seed=int(s),
                skip_special_tokens=True,
            )
            for s in seeds
        ]
        outputs = self.llm.generate(inputs, params, use_tqdm=False)
        results: list[list[Completion]] = []
        for out in outputs:
            comps = sorted(out.outputs, key=lambda c: c.index)
            results.append(
                [
                    Completion(
                        text=c.text,
                        token_ids=[int(t) for t in c.token_ids],
                        finish_reason="length" if c.finish_reason == "length" else "stop",
                    )
                    for c in comps
                ]
            )
        return results


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def make_backend(name: str, model_dir: str | os.PathLike, tokenizer: Any, **kwargs: Any) -> Any:
    """``name``: ``auto`` (vLLM if installed and a GPU is visible, else transformers), ``vllm`` or
    ``transformers``. Keyword arguments that the chosen backend does not take are ignored."""
    if name == "auto":
        import torch

        name = "vllm" if vllm_available() and torch.cuda.is_available() else "transformers"
    if name == "vllm":
        keep = {"dtype", "tensor_parallel_size", "gpu_memory_utilization", "max_model_len", "seed"}
        return VLLMBackend(model_dir, tokenizer, **{k: v for k, v in kwargs.items() if k in keep and v is not None})
    if name == "transformers":
        keep = {"device", "dtype", "batch_size"}
        return TransformersBackend(model_dir, tokenizer, **{k: v for k, v in kwargs.items() if k in keep and v is not None})
    raise ValueError(f"unknown backend {name!r} (auto | vllm | transformers)")
