"""The README's Python tour runs as written (so the first thing a user copies works)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_tour_runs_and_round_trips(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the tour saves to "my-gato" in the working directory
    code = re.search(r"## A tour in Python\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README tour", "exec"), namespace)
    assert type(namespace["model"]).__name__ == "GatoForCausalLM"
    assert type(namespace["processor"]).__name__ == "GatoProcessor"
    assert (tmp_path / "my-gato" / "model.safetensors").exists()
    assert 5.0 < float(namespace["loss"].detach()) < 15.0  # ≈ ln(33025) = 10.4 for an untrained model
