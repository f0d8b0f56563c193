#!/usr/bin/env bash
# Reproduce Mariotte et al. 2025 (arXiv:2509.24793): fit the four backbones' clip-level grids
# (configs/paper/*.yaml) and the frame-level variants (configs/paper/frame/*.yaml), then write one
# report per protocol. See docs/reproducing_the_paper.md for time and disk estimates.
#
#   VOCALSET_ROOT=/path/to/VocalSet bash configs/paper/run_all.sh [--clip-only] [FIT ARGS...]
#
# VOCALSET_ROOT is the extracted VocalSet folder (the one holding FULL/). FIT ARGS go to every
# `saelight fit` (e.g. --trainer.devices 1); they must not move trainer.default_root_dir, which
# this script derives from the config path: configs/paper/X.yaml -> runs/paper/X. A run whose
# results/results.json exists is skipped, so rerunning after a failure resumes with the next one.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VOCALSET_ROOT:?set VOCALSET_ROOT to the VocalSet folder that holds FULL/}"

frame=1
if [[ "${1:-}" == "--clip-only" ]]; then
  frame=0
  shift
fi

fit_all() {  # fit_all CONFIG... : fit each config, then report over their run dirs
  local run_dirs=() config rel run_dir
  for config in "$@"; do
    rel=${config#configs/}
    run_dir=runs/${rel%.yaml}
    run_dirs+=("$run_dir")
    if [[ -f "$run_dir/results/results.json" ]]; then
      echo "== $config: $run_dir/results/results.json exists, skipped"
      continue
    fi
    echo "== $config -> $run_dir"
    saelight fit --config "$config" --data.cache.source.init_args.root "$VOCALSET_ROOT" \
      ${FIT_ARGS[@]+"${FIT_ARGS[@]}"}
  done
  saelight report "${run_dirs[@]}" --out "$(dirname "${run_dirs[0]}")/report"
}

FIT_ARGS=("$@")
fit_all configs/paper/{hubert,wavlm,ast,mert}.yaml
if [[ $frame == 1 ]]; then
  fit_all configs/paper/frame/{hubert,wavlm,ast,mert}.yaml
fi
