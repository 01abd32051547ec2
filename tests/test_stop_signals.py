"""SIGTERM (what `timeout`, systemd and schedulers send) stops a real `recarena run` process
as Ctrl-C does: manifest `interrupted` with reason SIGTERM, exit 143, the trace written up
to there, and `recarena resume` finishes it with the uninterrupted run's result."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulations.run.stop_signals import EXIT_SIGTERM, Terminated, sigterm_as_interrupt
from tests.feed_world import write_feed_scenario
from tests.test_resume import _assert_same, _env, _manifest, _recarena, _summary


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_feed_scenario(tmp_path_factory.mktemp("scenario"), "sigterm", seed=9,
                               users=120)


@pytest.fixture(scope="module")
def reference(scenario: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    proc = _recarena("run", str(scenario), "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out


def test_sigterm_is_an_interrupt_the_run_records_and_resume_finishes(
        scenario: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    size = (reference / "trace.jsonl").stat().st_size
    child = subprocess.Popen(
        [sys.executable, "-m", "simulations.cli.main", "run", str(scenario), "--out", str(out),
         "--quiet"], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    trace = out / "trace.jsonl"
    sent = False
    while child.poll() is None:
        # Inside the run loop (a third of the way), not while it sets up.
        if trace.exists() and trace.stat().st_size > size // 3:
            child.send_signal(signal.SIGTERM)
            sent = True
            break
        time.sleep(0.01)
    _, err = child.communicate(timeout=300)
    assert sent, "the run ended before it could be signalled"
    assert child.returncode == EXIT_SIGTERM == 143, err
    assert "interrupted by SIGTERM" in err and "recarena resume" in err
    m = _manifest(out)
    assert m["status"] == "interrupted" and m["reason"] == "SIGTERM"
    assert _summary(out)["status"] == "interrupted"
    assert (out / "trace.jsonl").stat().st_size < size  # it really stopped early
    proc = _recarena("resume", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    _assert_same(out, reference)


def test_sigterm_raises_terminated_only_inside_the_block() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), sigterm_as_interrupt():
        signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before
    assert issubclass(Terminated, KeyboardInterrupt)  # whatever handles Ctrl-C handles it
