"""The figure helpers every experiment's plot shares (`experiments.common.plotting`)."""

import pytest

from experiments.common import cli, plotting


def _figure():
    fig, ax = plotting.pyplot().subplots()
    ax.plot([0, 1], [1, 0])
    return fig


@pytest.mark.parametrize("given", ["figs/a", "figs/a.png", "figs/a.pdf"])
def test_save_writes_png_and_pdf_beside_each_other(tmp_path, given):
    paths = plotting.save(_figure(), tmp_path / given)
    assert paths == [str(tmp_path / "figs/a.png"), str(tmp_path / "figs/a.pdf")]
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["a.pdf", "a.png"]
    assert (tmp_path / "figs/a.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "figs/a.pdf").read_bytes()[:4] == b"%PDF"


def test_save_named_adds_each_suffix(tmp_path):
    paths = plotting.save_named(tmp_path / "f", {"": _figure(), "_more": _figure()})
    names = ["f.png", "f.pdf", "f_more.png", "f_more.pdf"]
    assert paths == [str(tmp_path / n) for n in names]


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ([], cli.UsageError, "--root is required"),
        (["--root=r"], cli.UsageError, "--out is required"),
        (["--root=r", "--out={out}", "--final_fraction=1.5"], cli.UsageError, r"\(0, 1\]"),
        (["--root=r", "--out={file}/fig"], cli.RunError, "is a file, not a directory"),
    ],
)
def test_run_flags_errors(tmp_path, args, error, message):
    command = cli.Cli("plot", None)
    holders = plotting.define_run_flags(command, "test")
    (tmp_path / "file").write_text("x")
    command.parse(["plot", *[a.format(out=tmp_path / "o", file=tmp_path / "file") for a in args]])
    with pytest.raises(error, match=message):
        plotting.read_run_flags(command, holders)


def test_run_flags_values(tmp_path):
    command = cli.Cli("plot", None)
    holders = plotting.define_run_flags(command, "test")
    command.parse(["plot", "--root=r", f"--out={tmp_path / 'o'}"])
    assert plotting.read_run_flags(command, holders) == ("r", tmp_path / "o", 0.1)
