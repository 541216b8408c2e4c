"""The progress bar of a training call: it appears with the first row, and the rate and the
time left of a resumed run count only the rows that call trains."""

import re

from experiments.common.progress import ProgressBar


def _last_frame(text):
    return text.replace("\r", "\n").strip().splitlines()[-1]


def test_a_resumed_run_shows_the_time_left_of_the_rows_it_trains(capsys, monkeypatch):
    clock = iter(range(0, 10**6, 10))  # every reading of tqdm's clock is 10 s later
    monkeypatch.setattr("tqdm.std.time", lambda: next(clock))
    bar = ProgressBar(total=1000, desc="bmg x10")
    assert capsys.readouterr().err == ""  # nothing before the first row
    for done in range(901, 911):  # resumed at row 900: ten rows trained
        bar(done, 1000, 100.0)
    bar.close()
    frame = _last_frame(capsys.readouterr().err)
    assert "910/1000" in frame and "100 env-steps/s" in frame
    # About ten seconds a row over the rows trained here, so 90 rows take minutes, not the
    # seconds that 910 rows over the same time would suggest.
    left = re.search(r"<([\d:]+),", frame)
    assert left is not None, frame
    seconds = sum(int(part) * 60**i for i, part in enumerate(reversed(left.group(1).split(":"))))
    assert seconds > 600, frame
