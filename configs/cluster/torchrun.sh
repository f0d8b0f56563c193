#!/bin/bash
# configs/cluster/torchrun.sh [CONFIG] [GPUS]: one machine, several GPUs, no SLURM.
# torchrun sets WORLD_SIZE/RANK/LOCAL_RANK/MASTER_ADDR/MASTER_PORT: `saelight cache` splits the
# clips over them and Lightning's DDP trains with them. After a crash, rerun the same command: the
# cache resumes where it stopped and `--ckpt_path last` resumes training from the last checkpoint
# (a ModelCheckpoint with save_last: true; with none yet, training starts from scratch).
set -euo pipefail
CONFIG=${1:-configs/quickstart.yaml}
GPUS=${2:-$(nvidia-smi --list-gpus | wc -l)}
RUN=(torchrun --standalone --nproc-per-node "$GPUS" -m saelight.cli)
"${RUN[@]}" cache --config "$CONFIG" --data.cache.backbone.init_args.device cuda
"${RUN[@]}" fit --config "$CONFIG" --trainer.accelerator gpu --trainer.devices "$GPUS" \
  --trainer.strategy ddp --ckpt_path last
