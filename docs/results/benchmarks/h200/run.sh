#!/bin/bash
# rnnlm on one NVIDIA H200 (16-core Xeon host), 2026-12-04: the benchmark with PyTorch
# on the same GPU, the default job, the GPU tests and three checks of the cuDNN LSTM
# path. The machine had jax 0.11.2 (CUDA 13 plugin), torch 2.11.0+cu130 and Python 3.12;
# flax 0.12.12 (flax 0.12.8 does not import under jax 0.11), optax 0.2.8,
# orbax-checkpoint 0.12.8, ml_collections 1.1.0 and tensorboardX 2.6.5 were installed as
# wheels. The shakespeare corpus was prepared beforehand into $RNNLM_DATA (no network).
cd "$(dirname "$0")/../../../.."
# The code measured is commit 0a8adf1's: the cuDNN rows and tests need it (the setting
# was removed after these runs).
export JAX_PLATFORMS=cuda XLA_PYTHON_CLIENT_PREALLOCATE=false
out=docs/results/benchmarks/h200
# Run 1 (run1_log.txt): the GPU tests (cut off by a 150 s limit), the benchmark (its
# transformer rows then failed on a PyTorch device bug, fixed before run 2) and the
# default job.
timeout 150 python -m pytest -q -p no:xdist -o addopts="" \
    tests/model/test_gpu.py tests/model/test_cells.py tests/model/test_model.py
python experiments/benchmark.py --transformer_hidden=256
python experiments/train.py --workdir=/tmp/gpu_job    # configs/shakespeare.py, 8,000 steps
cp /tmp/gpu_job/metrics.jsonl $out/default_job_metrics.jsonl
cp /tmp/gpu_job/config.json $out/default_job_config.json
# Run 2 (run2_log.txt, run2_benchmark.json): the GPU tests with their failures shown,
# then LSTM 512, the transformers and sampling.
python -m pytest -q -p no:xdist -o addopts="" -rf --tb=short tests/model/test_gpu.py
python experiments/benchmark.py --cells=lstm --hidden=512 --transformer_hidden=256 \
    --json_out=$out/run2_benchmark.json
# The cuDNN checks (cudnn_diag*_output.txt):
python $out/cudnn_diag1.py; python $out/cudnn_diag2.py; python $out/cudnn_diag3.py
