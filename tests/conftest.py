import jax
import pytest


@pytest.fixture(params=["jit", "nojit"])
def maybe_jit(request):
    """Runs a test once with ``jax.jit`` and once without."""
    return jax.jit if request.param == "jit" else (lambda f, **_: f)
