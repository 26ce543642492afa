#!/usr/bin/env bash
# Build a scratch venv with JAX for benchmarks/jax_population.py, outside the
# project (JAX is not one of dqnlab's dependencies).
#
#     bash benchmarks/jax_venv.sh [DIR]    # DIR defaults to /tmp/dqnlab-jax-venv
set -euo pipefail
dir="${1:-/tmp/dqnlab-jax-venv}"
python3 -m venv "$dir" && "$dir/bin/pip" install jax==0.10.2 numpy
echo "JAX venv ready: $dir/bin/python"
