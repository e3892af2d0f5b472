#!/bin/bash
# A harness sweep on a Ray cluster started inside one Slurm allocation: the Ray head on the
# first node, one Ray worker node per other node (both through srun), then
# `harness sweep --ray HEAD:PORT ...` here, with every argument of this script passed on.
#
#   source .venv/bin/activate     # sbatch hands this shell's environment to the job
#   sbatch --nodes=4 --gpus-per-task=8 --cpus-per-task=64 scripts/slurm_ray_sweep.sh \
#       --family pythia --sizes 70m,160m,410m,1b --revisions step1000,step143000 \
#       --out /shared/results
#
# --out must be on a filesystem every node sees (each checkpoint's Ray task writes its run
# folders there; this script's process updates the index). So must HF_HOME, for hub models
# fetched beforehand with `harness fetch` (compute nodes are often offline: HF_HUB_OFFLINE=1).
# One checkpoint asks for one GPU (--ray-gpus to change), so a node with 8 GPUs evaluates 8
# checkpoints at a time.
#
#SBATCH --job-name=harness-ray-sweep
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
#SBATCH --time=04:00:00
set -euo pipefail

port=${RAY_PORT:-6379}
cpus=${SLURM_CPUS_PER_TASK:-$(nproc)}
gpus=${SLURM_GPUS_PER_TASK:-0}
mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
head_ip=$(srun --nodes=1 --ntasks=1 -w "${nodes[0]}" hostname --ip-address | awk '{print $1}')
address="$head_ip:$port"

# Ray 2.60 (the version tested) authenticates connections with a token: one for this job,
# handed to every srun step through the environment (srun exports it by default).
export RAY_AUTH_MODE=token
RAY_AUTH_TOKEN=$(python -c "import secrets; print(secrets.token_hex(32))")
export RAY_AUTH_TOKEN

# the Ray nodes run as long as the job; leaving the script stops them
trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT

srun --nodes=1 --ntasks=1 -w "${nodes[0]}" \
    ray start --head --node-ip-address="$head_ip" --port="$port" --include-dashboard=false \
    --num-cpus="$cpus" --num-gpus="$gpus" --block &
until ray status --address="$address" >/dev/null 2>&1; do sleep 2; done

for node in "${nodes[@]:1}"; do
    srun --nodes=1 --ntasks=1 -w "$node" \
        ray start --address="$address" --num-cpus="$cpus" --num-gpus="$gpus" --block &
done
# no need to wait for the workers: Ray places checkpoints on each node as it joins

harness sweep --ray "$address" "$@"
