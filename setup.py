from setuptools import setup

setup(
    name='rnnlm',
    version='0.1.0',
    description='Character-level recurrent language models in JAX/Flax',
    packages=['rnnlm', 'configs', 'configs.sweeps', 'configs.emergence'],
    package_data={'rnnlm': ['csrc/*.cc']},  # Compiled on first use (rnnlm/kernels.py).
    python_requires='>=3.10',
    install_requires=[
        'jax>=0.7,<0.11',
        'flax>=0.11,<0.13',
        'optax>=0.2.4,<0.3',
        'orbax-checkpoint>=0.11,<0.13',
        'absl-py>=2.0',
        'ml-collections>=1.0',
        'numpy>=1.26',
        'tqdm>=4.60',
        'tensorboardX>=2.6',
        'scipy>=1.11',
        'matplotlib>=3.8',
        'tree-sitter>=0.23',
        'tree-sitter-c>=0.23',
    ],
    extras_require={
        'test': ['pytest>=8'],
        'bench': ['torch==2.13.0'],
    },
)
