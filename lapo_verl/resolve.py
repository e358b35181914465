"""``lapo-verl resolve``: the resolved value of config keys for a command line, for shell scripts.

Run directories carry a digest of the method knobs (``${lapo_settings_tag:}``), so a script that chains
stage 1 -> plans -> stage 2 asks for them instead of rebuilding the path itself::

    run_dir=$(lapo-verl resolve lapo_stage1 lapo.run_dir -- data.train_files=... lapo.experiment=x)
"""

from __future__ import annotations

import argparse
import sys


def compose_recipe(recipe: str, overrides: list[str]):
    """The config ``python -m verl.trainer.main_ppo +recipe=RECIPE <overrides>`` would run (a ``DictConfig``,
    unresolved), composed from verl's YAML files without importing verl (~1 s instead of ~10 s of CPU). Shared by
    ``lapo-verl resolve`` and ``lapo-verl doctor --estimate-memory``."""
    from lapo_verl.hydra_setup import compose_main_ppo_config

    return compose_main_ppo_config([f"+recipe={recipe}", *overrides])


def resolve_keys(recipe: str, keys: list[str], overrides: list[str]) -> list[str]:
    from omegaconf import OmegaConf

    from lapo_verl.preflight import absolute_lapo_paths

    cfg = compose_recipe(recipe, overrides)
    # what the trainer will use: its job-start callback makes LAPO's paths absolute against the working
    # directory the same way, so a script gets the run directory the run writes to
    absolute_lapo_paths(cfg)
    values = []
    for key in keys:
        value = OmegaConf.select(cfg, key, throw_on_missing=True)
        if OmegaConf.is_config(value):
            value = OmegaConf.to_yaml(value, resolve=True).strip()
        values.append(str(value))
    return values


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, overrides = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(
        prog="lapo-verl resolve",
        description="Print resolved config values (one per line) of +recipe=RECIPE with the given overrides.",
        epilog="example: lapo-verl resolve lapo_stage1 lapo.run_dir trainer.default_local_dir -- lapo.experiment=demo",
    )
    parser.add_argument("recipe", help="recipe name, e.g. lapo_stage1")
    parser.add_argument("keys", nargs="+", help="dotted keys, e.g. lapo.run_dir")
    args = parser.parse_args(argv)
    for value in resolve_keys(args.recipe, args.keys, overrides):
        print(value)
    return 0
