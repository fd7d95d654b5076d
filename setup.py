from setuptools import find_packages, setup

setup(
    name='rnnlm',
    version='0.3.0',
    description='Character-level recurrent language models in JAX/Flax',
    packages=find_packages(include=['rnnlm', 'rnnlm.*', 'configs', 'configs.*']),
    package_data={'rnnlm.model': ['csrc/*.cc'],  # Compiled on first use (rnnlm/model/kernels.py).
                  'rnnlm.studies.inside': ['page.js', 'page.css']},
    python_requires='>=3.11',
    # Lower bounds are the versions the test suite has been run with; the APIs used
    # (optax.tree.norm, flax nnx.List, Orbax's preservation_policy.BestN and partial
    # PyTree restore, jax.ffi) are recent, and older releases have not been tested.
    install_requires=[
        'jax>=0.10.2,<0.11',
        'flax>=0.12.8,<0.13',
        'optax>=0.2.8,<0.3',
        'orbax-checkpoint>=0.12.8,<0.13',
        'absl-py>=2.0',
        'ml-collections>=1.0',
        'numpy>=1.26',
        'tqdm>=4.60',
        'tensorboardX>=2.6',
        'scipy>=1.11',
        'matplotlib>=3.8',
        'tree-sitter>=0.23,<0.27',  # Its Python API changed incompatibly at 0.22.
        'tree-sitter-c>=0.23,<0.25',
    ],
    extras_require={
        'test': ['pytest>=8', 'pytest-xdist>=3.5', 'submitit>=1.5.4,<2'],
        # Sweeps on a SLURM cluster (--config.sweep.executor=slurm).
        'slurm': ['submitit>=1.5.4,<2'],
        # PyPI's Linux torch wheel is a CUDA build; for the CPU one, first run
        # pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
        'bench': ['torch==2.13.0'],
    },
)
