#!/bin/bash
# The real-ALE ablation study as a SLURM array: one task per (game, configuration, seed).
#
#   python -m experiments.atari.sweep --root=$ROOT --games=$GAMES --seeds=3 --preset=paper --dry_run
#
# prints the runs in order (task i trains the i-th, 0-based); set --array to 0-(N-1) for its N
# runs. A task that is preempted or times out resumes from its checkpoint when it is run
# again (resubmit the same array, or `scontrol requeue`); complete runs are skipped.
#
# Edit ROOT, GAMES and the resources for your cluster; the learner uses one accelerator and
# the emulators run in the task's CPU threads (one actor thread per --set=num_actors).
#SBATCH --job-name=bmg-ale
#SBATCH --array=0-3248%200
#SBATCH --cpus-per-task=8
#SBATCH --gres=gpu:1
#SBATCH --mem=32G
#SBATCH --time=48:00:00
#SBATCH --requeue
#SBATCH --output=logs/%x-%A_%a.out

set -euo pipefail
ROOT=${ROOT:-runs/ale}
# All 57 games (experiments.envs.ale.GAMES); the paper's ablation figure uses all of them.
GAMES=${GAMES:-$(python -c "from experiments.envs import ale; print(','.join(ale.GAMES))")}

python -m experiments.atari.sweep \
  --root="$ROOT" --games="$GAMES" --seeds=3 --preset=paper --quiet \
  --only="$SLURM_ARRAY_TASK_ID"
