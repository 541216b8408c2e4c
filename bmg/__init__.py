"""bmg: bootstrapped meta-gradients in JAX."""
