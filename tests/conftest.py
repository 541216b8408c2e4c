import jax
import pytest

# Two CPU devices, so that the population sharding code runs as it does on a 2-core machine.
# This must happen before JAX runs anything.
jax.config.update("jax_num_cpu_devices", 2)


@pytest.fixture(params=["jit", "nojit"])
def maybe_jit(request):
    """Runs a test once with ``jax.jit`` and once without."""
    return jax.jit if request.param == "jit" else (lambda f, **_: f)
