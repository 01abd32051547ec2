"""The redactor: secrets of the environment and credential shapes, masked in any text."""

from __future__ import annotations

import json

import pytest

from simulations.record.redact import Redactor, secret_env_names
from simulations.record.trace import TraceWriter, read_trace

ENV = {"OPENAI_API_KEY": "sk-live-0123456789abcdefghij", "HF_TOKEN": 'quote"and\\slash-123',
       "MY_PASSWORD": "correct-horse-battery", "PATH": "/usr/bin:/bin", "SHORT_KEY": "1",
       "CUSTOM": "custom-secret-value-42"}


def test_secret_variables_by_name_and_by_config() -> None:
    assert secret_env_names(ENV) == ["HF_TOKEN", "MY_PASSWORD", "OPENAI_API_KEY", "SHORT_KEY"]
    assert "CUSTOM" in secret_env_names(ENV, ["CUSTOM"])


def test_environment_values_are_masked_also_when_json_escaped() -> None:
    r = Redactor.from_environment(["CUSTOM"], environ=ENV)
    line = json.dumps({"a": f"x {ENV['HF_TOKEN']} y", "b": ENV["CUSTOM"],
                       "c": ENV["MY_PASSWORD"], "path": ENV["PATH"], "one": "1"})
    out = r.text(line)
    assert json.loads(out) == {"a": "x *** y", "b": "***", "c": "***", "path": "/usr/bin:/bin",
                               "one": "1"}


@pytest.mark.parametrize(("text", "masked"), [
    ("key sk-proj-AbC123dEf456GhI789jkl end", "key *** end"),
    ("Authorization: Bearer abcdef123456.xyz", "Authorization: Bearer ***"),
    ("https://user:pa55word@host.example/v1", "https://***@host.example/v1"),
    ("http://h/v1?api-key=zzz999&x=1", "http://h/v1?api-key=***&x=1"),
    ("aws AKIAABCDEFGHIJKLMNOP", "aws ***"),
    ("gh ghp_abcdefghijklmnopqrstuvwxyz0123", "gh ***"),
    ("hf hf_abcdefghijklmnopqrstuvwxyz", "hf ***"),
    # Ordinary text stays: a task id, a short sk- word, a URL without credentials.
    ("task-" "1234567890abcdefghij and sk-learn", "task-" "1234567890abcdefghij and sk-learn"),
    ("see https://example.com/a?page=2", "see https://example.com/a?page=2"),
])
def test_credential_shapes(text: str, masked: str) -> None:
    assert Redactor().text(text) == masked


def test_trace_writer_masks_every_line(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", ENV["OPENAI_API_KEY"])
    with TraceWriter(tmp_path / "trace.jsonl") as w:
        w.emit("run_end", "run/end", reason=f"HTTP 401: bad key {ENV['OPENAI_API_KEY']}")
    (ev,) = read_trace(tmp_path)
    assert ev["reason"] == "HTTP 401: bad key ***"
