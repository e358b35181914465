"""Development and demo scaffolding, kept out of the installed ``lapo_verl`` package.

* :mod:`recipes.dev.assets`: offline tokenizers and tiny random Qwen2 models for tests and benchmarks
  (``python recipes/dev/assets.py OUT_DIR --tokenizer tiny-bpe``).
* :mod:`recipes.dev.quickstart`: the CPU quickstart's data and warmed-up tiny model
  (``python recipes/dev/quickstart.py --out runs/quickstart``; ``recipes/quickstart_cpu.sh`` runs it).

Both run as scripts from a source checkout; tests import them as ``recipes.dev.*`` (``pytest.ini`` puts the
repository root on ``sys.path``), benchmarks put the root on ``sys.path`` themselves.
"""
