"""Which verl continuous-token builder fits a tokenizer (verl 0.9.1 chooses by ``model_type`` alone).

verl 0.9.1 builds every agent-loop prompt through a "continuous-token builder" picked by exact lookup of
the model's root ``config.json`` ``model_type`` (``verl/utils/tokenizer/continuous_token_wiring.py``).
Both of the paper's base models (DeepSeek-R1-Distill-Qwen-1.5B, DeepScaleR-1.5B-Preview) say
``model_type: qwen2``, so verl picks its Qwen (ChatML) builder, which requires ``<|im_end|>``; their
tokenizer is DeepSeek-R1's (``<｜end▁of▁sentence｜>``, ``<｜User｜>``, ``<｜Assistant｜>``) and defines no
``<|im_end|>``, so ``AgentLoopBase.__init__`` raises ``ValueError: Tokenizer does not define required
token '<|im_end|>'`` before the first rollout (fixed upstream after 0.9.1, verl issue 7637).

:func:`choose_builder_family` keeps verl's own choice whenever its builder can be built for the
tokenizer, and otherwise picks the family that matches the tokenizer's chat tokens (DeepSeek's builder,
whose docstring covers V3/R1, for R1-style tokenizers; Qwen's for ChatML ones; verl's generic builder
otherwise). lapo-verl's agent loops (:mod:`lapo_verl.verl_ext.agent_loop`) use it; ``lapo-verl doctor
--model PATH`` runs it on a local model directory before a run starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEEPSEEK_EOS = "<\uff5cend\u2581of\u2581sentence\uff5c>"
CHATML_END = "<|im_end|>"


@dataclass(frozen=True)
class BuilderChoice:
    family: str          # verl ContinuousTokenModelFamily value to use
    verl_family: str     # what verl 0.9.1 would pick from model_type alone
    verl_error: str      # why verl's pick cannot be built for this tokenizer ("" if it can)

    @property
    def overridden(self) -> bool:
        return self.family != self.verl_family


def _defines(tokenizer: Any, token: str) -> bool:
    token_id = tokenizer.convert_tokens_to_ids(token)
    return token_id is not None and token_id != getattr(tokenizer, "unk_token_id", None)


def _try_build(family: str, tokenizer: Any, chat_template_kwargs: dict | None) -> str:
    from verl.utils.tokenizer.continuous_token_wiring import get_continuous_token_builder_class

    try:
        get_continuous_token_builder_class(family)(tokenizer, chat_template_kwargs=chat_template_kwargs or {})
    except ValueError as exc:
        return str(exc)
    return ""


_CHOICES: dict[tuple, tuple[Any, BuilderChoice]] = {}


def choose_builder_family(
    tokenizer: Any, hf_model_type: str | None, chat_template_kwargs: dict | None = None
) -> BuilderChoice:
    """The continuous-token builder family for a text model: verl's pick if it fits ``tokenizer``, else
    the family of the tokenizer's own chat tokens. Raises ``ValueError`` if none can be built.

    verl builds an agent loop per sample; the choice is cached per tokenizer object and model type."""
    key = (id(tokenizer), hf_model_type, repr(sorted((chat_template_kwargs or {}).items())))
    cached = _CHOICES.get(key)
    if cached is None or cached[0] is not tokenizer:
        _CHOICES[key] = (tokenizer, _choose(tokenizer, hf_model_type, chat_template_kwargs))
    return _CHOICES[key][1]


def _choose(tokenizer: Any, hf_model_type: str | None, chat_template_kwargs: dict | None) -> BuilderChoice:
    from verl.utils.tokenizer.continuous_token_wiring import infer_continuous_token_model_family

    verl_family = str(infer_continuous_token_model_family(hf_model_type=hf_model_type))
    error = _try_build(verl_family, tokenizer, chat_template_kwargs)
    if not error:
        return BuilderChoice(verl_family, verl_family, "")
    candidates = []
    if _defines(tokenizer, DEEPSEEK_EOS):
        candidates.append("deepseek")
    if _defines(tokenizer, CHATML_END):
        candidates.append("qwen")
    candidates.append("default")
    for family in candidates:
        if not _try_build(family, tokenizer, chat_template_kwargs):
            return BuilderChoice(family, verl_family, error)
    raise ValueError(
        f"no verl continuous-token builder can be built for this tokenizer (model_type={hf_model_type!r}): "
        f"{error}; check the model directory's tokenizer files"
    )


def create_builder(tokenizer: Any, choice: BuilderChoice, chat_template_kwargs: dict | None = None) -> Any:
    from verl.utils.tokenizer.continuous_token_wiring import create_continuous_token_builder

    return create_continuous_token_builder(
        tokenizer, model_family=choice.family, chat_template_kwargs=chat_template_kwargs or {}
    )
