#!/bin/bash
# sbatch configs/cluster/slurm_job.sh [CONFIG]: extract the activation cache, then train the SAE grid,
# on 2 nodes x 4 GPUs. Near the time limit SLURM sends SIGUSR1: Lightning writes hpc_ckpt_<n>.ckpt
# in the run directory and requeues the job, whose `fit` resumes from it (mid-epoch, exactly).
#SBATCH --job-name=saelight
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --signal=SIGUSR1@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=%x-%j.out
set -euo pipefail
CONFIG=${1:-configs/quickstart.yaml}
CLUSTER=configs/cluster/slurm_ddp.yaml
# Compute nodes are often offline: fetch models and data on the login node first, sync W&B later.
export HF_HUB_OFFLINE=1 WANDB_MODE=offline
# `saelight cache` splits the clips over torch.distributed's environment variables; map SLURM's.
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export MASTER_ADDR MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))
# Each task runs the backbone on its own GPU (LOCAL_RANK); rank 0 merges the manifest at the end.
# shellcheck disable=SC2016 # the variables are expanded by each task, not here
srun bash -c 'WORLD_SIZE=$SLURM_NTASKS RANK=$SLURM_PROCID LOCAL_RANK=$SLURM_LOCALID saelight cache \
  --config "$0" --config "$1" --data.cache.backbone.init_args.device cuda' "$CONFIG" "$CLUSTER"
# After a requeue, `fit` finds hpc_ckpt_<n>.ckpt in trainer.default_root_dir and resumes from it.
srun saelight fit --config "$CONFIG" --config "$CLUSTER"
