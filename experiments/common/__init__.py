"""What every experiment shares: `cli` (one command-line shape: flags from a config
dataclass, exit status 2 for usage errors and 1 for runtime errors), `config_checks`, `runs`
and `run_files` (run directories, checkpoints, exact resume), `guard` (the non-finite guard),
`trainer` (population programs: build, chunk, compile once, train rows), `population` (seeds
as one sharded program), `progress` and `tensorboard` (what a run shows as it goes)."""
