"""What every experiment entry point shares: `experiments.common.cli`, the one command-line
shape (flags from a config dataclass, one error path, exit status 2 for usage errors and 1
for runtime errors)."""
