#!/bin/bash
# One real-ALE run whose learner spans several hosts: one process per node, each with its own
# actors (num_envs emulators per actor) and GPU, one learner over all of them (the batch is
# the nodes' rollouts side by side, gradients averaged across all devices).
#
# `srun` starts the command on every node; `--distributed` makes each process call
# jax.distributed.initialize(), which reads the coordinator, the number of processes and the
# process id from SLURM's environment. Process 0 writes the run directory, every process takes
# part in its checkpoints, so RUN_DIR must be on a file system all nodes see. Resubmitting the
# same job resumes the run (with the same number of nodes).
#
# Edit RUN_DIR, the flags and the resources for your cluster.
#SBATCH --job-name=bmg-ale-multihost
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=16
#SBATCH --gres=gpu:1
#SBATCH --mem=64G
#SBATCH --time=48:00:00
#SBATCH --requeue
#SBATCH --output=logs/%x-%j.out

set -euo pipefail
RUN_DIR=${RUN_DIR:-runs/ale/ms_pacman/bmg-rmsprop-kl_v-L4}

srun python -m experiments.atari --distributed --game=ms_pacman --method=bmg \
  --target_optimizer=rmsprop --matching=kl_v --bootstrap_steps=4 --preset=paper \
  --run_dir="$RUN_DIR" --quiet
