"""devices.py: --device auto|cpu|cuda|mps, on a machine with no GPU (this one, CI)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from searchkit import devices
from searchkit import embedder as embedding
from searchkit.cli import app
from searchkit.errors import ModelError, UsageError


@pytest.mark.parametrize(
    ("device", "backend", "asked", "expected"),
    [
        (None, "onnx", False, ("onnx", "cpu")),
        ("auto", "onnx", False, ("onnx", "cpu")),
        ("cpu", "torch", True, ("torch", "cpu")),
        ("CPU", "onnx-int8", True, ("onnx-int8", "cpu")),
        ("auto", "onnx-int8", True, ("onnx-int8", "cpu")),
    ],
)
def test_without_a_gpu_everything_runs_on_the_cpu(
    device: str | None, backend: str, asked: bool, expected: tuple[str, str]
) -> None:
    assert devices.choose(device, backend, asked) == expected


def test_auto_picks_cuda_where_torch_sees_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "_cuda_visible", lambda: True)
    assert devices.choose("auto", "onnx", False) == ("torch", "cuda")
    assert devices.choose(None, "torch", True) == ("torch", "cuda")
    # an ONNX engine asked for by name stays on the CPU: it has no GPU build here
    assert devices.choose("auto", "onnx-int8", True) == ("onnx-int8", "cpu")


@pytest.mark.parametrize(
    ("device", "backend", "asked", "error", "message"),
    [
        ("gpu", "onnx", False, UsageError, "unknown device 'gpu': choose one of auto, cpu, cuda, mps"),
        ("cuda", "onnx", True, UsageError, "--device cuda runs the torch engine, and --backend onnx runs on"),
        ("cuda", "onnx", False, ModelError, "--device cuda: torch"),
        ("mps", "torch", True, ModelError, "sees no MPS device here; use --device cpu (or auto)"),
    ],
)
def test_devices_that_cannot_be_had_are_one_line_errors(
    device: str, backend: str, asked: bool, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        devices.choose(device, backend, asked)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_auto_on_a_machine_without_nvidia_does_not_import_torch() -> None:
    code = (
        "import sys; from searchkit import devices; "
        "print(devices.choose('auto', 'onnx', False), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "('onnx', 'cpu') False"


def test_cli_device_cuda_without_one_is_refused_with_one_line() -> None:
    result = CliRunner().invoke(app, ["embed", "hello", "--device", "cuda"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: --device cuda: torch ") and "use --device cpu" in lines[0]


def test_torch_on_the_cpu_embeds_as_the_default_engine(model: embedding.Embedder) -> None:
    texts = ["The weather is lovely today.", "He drove to the stadium"]
    on_cpu = embedding.load(backend="torch", device="cpu")
    assert on_cpu.device == "cpu" and on_cpu.backend == "torch"
    assert np.abs(on_cpu.encode(texts) - model.encode(texts)).max() < 1e-5
    result = CliRunner().invoke(app, ["embed", *texts, "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) == 2


def test_an_engine_kept_to_one_thread_gives_the_same_vectors(model: embedding.Embedder) -> None:
    texts = ["I like soccer", "he is a basketball player"]
    one = embedding.load(threads=1)
    assert one is not model  # a separate engine, with its own session
    assert np.abs(one.encode(texts) - model.encode(texts)).max() < 1e-5
