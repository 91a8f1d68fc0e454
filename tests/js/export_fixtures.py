"""Fixtures for the Live pad's JavaScript tests (tests/js/*.test.js): decoders and maps as the
browser gets them (vae.services.browser_export) with what PyTorch and `LatentMap` compute for them, and the
component's script as Python assembles it. Written to one JSON file the Node tests read.

    python3 tests/js/export_fixtures.py DIR      # writes DIR/fixtures.json
    LATENT_PAD_FIXTURES=DIR/fixtures.json node --test tests/js

tests/test_pad_js.py does both in a temporary folder (part of the README's test command).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from vae.analysis.maps import LatentMap  # noqa: E402
from vae.core.config import ModelConfig  # noqa: E402
from vae.core.models import build_model  # noqa: E402
from vae.services import browser_export  # noqa: E402


def decoder_model(arch: str = "mlp", latent_dim: int = 2, image_shape=(1, 8, 8), hidden=(32,), channels=(8, 16), kind="vae"):
    """A seeded model in eval mode whose decoder biases are all different (also used by
    tests/test_browser_export.py)."""
    cfg = ModelConfig(kind=kind, arch=arch, image_shape=image_shape, latent_dim=latent_dim, hidden=hidden, channels=channels)
    model = build_model(cfg, seed=0).eval()
    with torch.no_grad():  # non-zero biases, so a mixed-up bias would show
        for name, p in model.decoder.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.linspace(-0.5, 0.5, p.numel()).reshape(p.shape))
    return model


def _z(n: int, d: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, d)) * 2).astype(np.float32)


def _decoder_case(name: str, model, z: np.ndarray) -> dict[str, Any]:
    with torch.no_grad():
        expected = model.decode(torch.from_numpy(z)).numpy()
    return {"name": name, "export": browser_export.export_decoder(model), "z": z.tolist(),
            "expected": expected.reshape(len(z), -1).tolist(), "shape": list(expected.shape[1:])}


def _odd_conv_case() -> dict[str, Any]:
    """One ConvTranspose2d with odd strides, uneven padding and output padding, as a decoder of
    its own (unflatten -> convT -> sigmoid), against PyTorch's layer."""
    torch.manual_seed(0)
    layer = torch.nn.ConvTranspose2d(3, 2, (3, 5), stride=(3, 2), padding=(1, 2), output_padding=(2, 1))
    z = _z(2, 3 * 4 * 5)
    with torch.no_grad():
        expected = torch.sigmoid(layer(torch.from_numpy(z).reshape(2, 3, 4, 5))).numpy()
    export = {
        "format": browser_export.FORMAT, "version": browser_export.VERSION, "kind": "vae", "arch": "conv", "latent_dim": 60,
        "image_shape": list(expected.shape[1:]), "n_params": sum(p.numel() for p in layer.parameters()),
        "layers": [{"type": "unflatten", "shape": [3, 4, 5]}, browser_export._export_layer(layer), {"type": "sigmoid"}],
    }
    return {"name": "convT stride (3, 2), padding (1, 2), output padding (2, 1)", "export": export, "z": z.tolist(),
            "expected": expected.reshape(2, -1).tolist(), "shape": list(expected.shape[1:])}


def _mu(n: int = 120, d: int = 4) -> np.ndarray:
    rng = np.random.default_rng(3)
    return (rng.standard_normal((n, d)) * np.linspace(2, 0.5, d)).astype(np.float32)


def _map_case(name: str, lmap: LatentMap, mu: np.ndarray, p: np.ndarray, labels=None) -> dict[str, Any]:
    return {"name": name, "export": browser_export.export_map(lmap, labels), "points": np.asarray(lmap.points_, np.float32).tolist(),
            "p": p.tolist(), "lift": lmap.lift(p).tolist(), "z": mu[:9].tolist(), "locate": lmap.locate(mu[:9]).tolist()}


def _judge(image_shape=(1, 8, 8), n_classes: int = 10, seed: int = 0):
    """An untrained, seeded judge net (weights are all the export needs) with non-zero biases."""
    from vae.analysis.judge import DEFAULT_RECIPE, Judge, build_net

    torch.manual_seed(seed)
    net = build_net(image_shape, n_classes, DEFAULT_RECIPE)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.linspace(-0.3, 0.3, p.numel()))
    return Judge(net, tuple(f"c{i}" for i in range(n_classes)), image_shape, float("nan"), DEFAULT_RECIPE, f"test{seed}", 0.0)


def _images(model, n: int, seed: int = 0) -> np.ndarray:
    with torch.no_grad():
        return model.decode(torch.from_numpy(_z(n, model.latent_dim, seed))).numpy()


def _net_cases() -> dict[str, Any]:
    """The judge's and the encoders' forward passes (image -> vector) against PyTorch, an odd
    max-pool and conv2d, the posterior's q(z)/p(z) and the whole hole meter against layers.hole_meter."""
    from vae.analysis import layers

    judges = []
    for shape in [(1, 8, 8), (1, 28, 28), (3, 7, 9)]:
        judge = _judge(shape)
        x = np.random.default_rng(1).random((4, *shape)).astype(np.float32)
        with torch.no_grad():
            probs = torch.softmax(judge.net(torch.from_numpy(x)), 1).numpy()
        judges.append({"name": f"judge {shape}", "export": browser_export.export_judge(judge), "x": x.reshape(4, -1).tolist(),
                       "probs": probs.tolist()})
    encoders = []
    for name, model in [("mlp 2-D", decoder_model("mlp", 2)), ("mlp 5-D, hidden (64, 24)", decoder_model("mlp", 5, hidden=(64, 24))),
                        ("conv 3-D (1, 16, 16)", decoder_model("conv", 3, image_shape=(1, 16, 16), hidden=(20,), channels=(4, 6))),
                        ("conv AE 2-D (3, 8, 12)", decoder_model("conv", 2, image_shape=(3, 8, 12), hidden=(20,), channels=(5,), kind="ae"))]:
        x = _images(model, 5)
        with torch.no_grad():
            mu = model.encode(torch.from_numpy(x))[0].numpy()
        encoders.append({"name": name, "export": browser_export.export_encoder(model), "x": x.reshape(5, -1).tolist(), "mu": mu.tolist()})
    torch.manual_seed(2)
    odd = torch.nn.Sequential(torch.nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0)), torch.nn.ReLU(),
                              torch.nn.MaxPool2d((3, 2), stride=(2, 3), padding=1, ceil_mode=True), torch.nn.Flatten())
    x = np.random.default_rng(4).standard_normal((3, 2, 9, 7)).astype(np.float32)
    with torch.no_grad():
        y = odd(torch.from_numpy(x)).numpy()
    odd_case = {"name": "conv2d (3, 2) stride (2, 1), maxpool (3, 2) stride (2, 3) padding 1 ceil", "x": x.reshape(3, -1).tolist(), "y": y.tolist(),
                "export": {"format": browser_export.FORMAT, "version": browser_export.VERSION, "image_shape": [2, 9, 7],
                           "layers": [browser_export._export_layer(m) for m in odd]}}
    rng = np.random.default_rng(5)
    mu = rng.standard_normal((300, 3)) * 1.5
    var = np.exp(rng.uniform(-5, 0, (300, 3)))
    zs = np.concatenate([mu[:2], rng.standard_normal((4, 3)), [[6.0, -6.0, 4.0], [0.0, 0.0, 0.0]]])
    posterior = {"export": browser_export.export_posterior(mu, var), "z": zs.tolist(),
                 "expected": layers.log_aggregate_over_prior(zs, *_as_exported(mu, var)).tolist()}
    model, judge = decoder_model("mlp", 3, image_shape=(1, 8, 8)), _judge((1, 8, 8), seed=1)
    sample = (mu[:50], var[:50])
    meters = []
    for z in zs:
        m = layers.hole_meter(model, judge, z, _as_exported(*sample))
        meters.append({"z": z.tolist(), "cls": m.class_index, "confidence": m.confidence, "log_q_over_p": m.log_q_over_p,
                       "round_trip": m.round_trip})
    meter = {"decoder": browser_export.export_decoder(model), "encoder": browser_export.export_encoder(model),
             "judge": browser_export.export_judge(judge), "posterior": browser_export.export_posterior(*sample), "cases": meters}
    return {"judges": judges, "encoders": encoders, "odd_net": odd_case, "posterior": posterior, "meter": meter}


def _as_exported(mu: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(μ, σ²) as the browser gets them: μ in float32, σ² from float32 log σ² (export_posterior),
    so the comparison is of the maths, not of the export's rounding."""
    return (np.asarray(mu, np.float32).astype(np.float64),
            np.exp(np.log(np.asarray(var, np.float64)).astype(np.float32).astype(np.float64)))


def _standalone_cases() -> list[dict[str, Any]]:
    """Packed exports (vae.services.standalone_pad) and the float32 values Python unpacks from them:
    standalone.js must unpack the very same values. A decoder packed as export-pad packs it (per-row
    steps on its output layer), and a hand-made one whose codes need all four byte planes."""
    from vae.services import standalone_pad

    model = decoder_model("mlp", 2, hidden=(32,))
    decoder = standalone_pad.pack_decoder(model, _z(200, 2, seed=3))
    big = np.random.default_rng(6).standard_normal((3, 4)).astype(np.float32) * np.float32(2e3)
    big[0, 0], big[0, 1] = 0.0, -2.0e3  # a zero code, a large negative one
    layer = {"type": "linear", "shape": [3, 4], "weight": browser_export.encode_f32(big), "bias": browser_export.encode_f32(np.ones(3, np.float32))}
    wide = standalone_pad.pack_export({"format": browser_export.FORMAT, "layers": [layer, {"type": "sigmoid"}]},
                                      [np.array([1e-5, 3e-6, 2.5e-3], np.float32), np.array([0.3], np.float32)], 0.0)
    cases = []
    for name, packed in (("mlp 2-D decoder, as export-pad packs it", decoder), ("codes of four bytes, three row steps", wide)):
        plain = standalone_pad.unpack_decoder(packed)
        values = {f"{i}.{key}": browser_export.decode_f32(layer[key]).tolist()
                  for i, layer in enumerate(plain["layers"]) for key in ("weight", "bias") if key in layer}
        cases.append({"name": name, "packed": packed, "values": values})
    return cases


def fixtures() -> dict[str, Any]:
    from pages.ui.latent_pad import JS  # the script as the component sends it

    special = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    special[0, :4] = [np.float32(1e-38), -0.0, np.finfo(np.float32).max, np.float32(np.pi)]
    decoders = [
        _decoder_case(f"mlp {d}-D, hidden {h}", decoder_model("mlp", d, hidden=h), _z(64, d))
        for d, h in [(1, (16,)), (2, (32,)), (5, (64, 24))]
    ] + [
        _decoder_case(f"conv {shape}, channels {ch}", decoder_model("conv", 3, image_shape=shape, hidden=(20,), channels=ch), _z(16, 3, seed=1))
        for shape, ch in [((1, 8, 8), (4, 6)), ((3, 8, 12), (5,)), ((1, 16, 16), (4, 4, 3)), ((3, 32, 32), (4, 4, 6))]
    ] + [_decoder_case("mlp 3-D, RGB 3x6x6", decoder_model("mlp", 3, image_shape=(3, 6, 6), hidden=(16,)), _z(16, 3, seed=2))] + [_odd_conv_case()]
    p = np.random.default_rng(0).standard_normal((9, 2)).astype(np.float32)
    maps = [
        _map_case(f"{method} {d}-D", LatentMap(method).fit(_mu(d=d)), _mu(d=d), p, labels=np.arange(120) % 10)
        for method, d in [("identity", 1), ("identity", 2), ("pca", 1), ("pca", 4)]
    ]
    mu = _mu(60, 3)
    points = np.random.default_rng(1).standard_normal((60, 2)).astype(np.float32) * 10
    tsne = LatentMap("tsne", n_neighbors=5).fit(mu, points=points)
    p_tsne = np.concatenate([points[:3], np.random.default_rng(2).standard_normal((6, 2)).astype(np.float32) * 10])
    maps.append({**_map_case("tsne 3-D (idw, k = 5)", tsne, mu, p_tsne), "exact_hits": 3})  # p[:3] are map points: lift gives mu[:3]
    return {
        "f32": {"b64": browser_export.encode_f32(special), "values": special.ravel().tolist()},
        "decoders": decoders,
        "maps": maps,
        "component_js": JS,
        "standalone": _standalone_cases(),
        **_net_cases(),
    }


def write(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "fixtures.json"
    out.write_text(json.dumps(fixtures()), encoding="utf-8")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 tests/js/export_fixtures.py DIR")
    print(write(Path(sys.argv[1])))
