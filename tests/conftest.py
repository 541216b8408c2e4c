import os
from pathlib import Path

# One persistent XLA compilation cache for every process of a test run: the pytest-xdist
# workers and the command-line subprocesses that many experiment tests start compile the
# same smoke programs again and again. Set before JAX is imported, so that subprocesses
# inherit it through the environment; BMG_TEST_JAX_CACHE=off turns it off (to time the
# tests without it), any other value is the cache directory. It is not size-limited (JAX
# needs the filelock package for that); it sits where `config.cache.mkdir` puts directories,
# so `pytest --cache-clear` empties it.
_CACHE = os.environ.get(
    "BMG_TEST_JAX_CACHE", str(Path(__file__).parents[1] / ".pytest_cache" / "d" / "jax")
)
if _CACHE != "off":
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import jax  # noqa: E402
import pytest  # noqa: E402

# Two CPU devices, so that the population sharding code runs as it does on a 2-core machine.
# This must happen before JAX runs anything.
jax.config.update("jax_num_cpu_devices", 2)


@pytest.fixture(params=["jit", "nojit"])
def maybe_jit(request):
    """Runs a test once with ``jax.jit`` and once without."""
    return jax.jit if request.param == "jit" else (lambda f, **_: f)
