"""Data flows downward only: experiments → agents → bmg (README, Layout).

Each module's imports are read with `ast`: ``bmg/`` imports neither ``agents`` nor
``experiments`` nor haiku; ``agents/`` imports no ``experiments``, and only
``agents/networks.py`` imports haiku; the tests of a layer import nothing above it (the
agents' tests may use an environment from ``experiments.envs``).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported(path: Path) -> set[str]:
    """The top two levels of every module ``path`` imports (``experiments.envs``, ``jax``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {".".join(name.split(".")[:2]) for name in names}


def forbidden(name: str, banned: tuple[str, ...], allowed: tuple[str, ...] = ()) -> bool:
    top = name.split(".")[0]
    return top in banned and not any(name == a or name.startswith(a + ".") for a in allowed)


LAYERS = [
    ("bmg", ("agents", "experiments", "haiku"), ()),
    ("agents", ("experiments",), ()),
    ("tests/bmg", ("agents", "experiments"), ()),
    ("tests/agents", ("experiments",), ("experiments.envs",)),
]


@pytest.mark.parametrize(("folder", "banned", "allowed"), LAYERS)
def test_no_module_imports_a_layer_above_its_own(folder, banned, allowed):
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, folder
    wrong = {
        str(f.relative_to(ROOT)): sorted(n for n in imported(f) if forbidden(n, banned, allowed))
        for f in files
    }
    assert {f: names for f, names in wrong.items() if names} == {}


def test_only_the_networks_module_of_agents_imports_haiku():
    users = sorted(
        str(f.relative_to(ROOT))
        for f in (ROOT / "agents").rglob("*.py")
        if any(n.split(".")[0] == "haiku" for n in imported(f))
    )
    assert users == ["agents/networks.py"]


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import jax\nfrom experiments.minatar import train\n")
    names = imported(module)
    assert names == {"jax", "experiments.minatar"}
    assert forbidden("experiments.minatar", ("experiments",), ("experiments.envs",))
    assert not forbidden("experiments.envs", ("experiments",), ("experiments.envs",))
