"""CPU-scale replica of LAPO's main result (issue 13): procedural arithmetic chains with a difficulty knob,
a small-vocabulary tokenizer, a tiny Qwen2 warmed up to over-think, and the evaluation of the trained models.
Run it with ``bash recipes/cpu_replica.sh``; the frozen design is ``docs/replica-design.md``."""
