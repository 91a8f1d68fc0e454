"""The standalone pad without a browser: its files, the packed weights, the HTML, and
`python -m vae export-pad` on good and bad input (one line, exit code 2).

The file in Chromium (file://, network blocked, keys, drag, touch, decode vs PyTorch) is
tests/e2e/test_standalone_pad_browser.py."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from vae.__main__ import main
from vae.core.checkpoint import load_checkpoint, save_checkpoint
from vae.core.config import TrainConfig
from vae.core.models import build_model
from vae.services import standalone_pad
from vae.services.standalone_pad import PAD_ASSETS

DATA_RE = re.compile(r'<script type="application/json" id="latent-pad-data">(.*?)</script>', re.S)


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(result: tuple[int, str, str], *words: str) -> None:
    code, out, err = result
    assert code == 2, err
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


def save_untrained(path: Path, tiny_model_config, kind: str = "vae", latent_dim: int = 2, dataset: str = "digits", seed: int = 0) -> Path:
    """A checkpoint of an untrained tiny model (what export-pad checks needs no training)."""
    torch.manual_seed(seed)
    model = build_model(tiny_model_config(kind=kind, latent_dim=latent_dim))
    return save_checkpoint(path, model, TrainConfig(dataset="digits", epochs=1), {"name": dataset, "image_shape": [1, 8, 8]}, pair="tiny")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, tiny_model_config) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("standalone")
    return save_untrained(folder / "tiny-vae", tiny_model_config), save_untrained(folder / "tiny-ae", tiny_model_config, kind="ae", seed=1)


def embedded_data(text: str) -> dict:
    found = DATA_RE.search(text)
    assert found is not None
    return json.loads(found.group(1))


# ---- the front-end files ---------------------------------------------------------------------


def test_the_asset_folder_holds_every_file_the_pad_and_the_shim_need():
    assert PAD_ASSETS.is_dir(), PAD_ASSETS
    for name in ("pad.html", "pad.css", standalone_pad.HOST_SHIM, *standalone_pad.js_modules()):
        assert (PAD_ASSETS / name).is_file(), name


def test_the_standalone_reads_the_very_files_and_order_the_live_pad_component_uses():
    from pages.ui import latent_pad

    assert standalone_pad.js_modules() == latent_pad.JS_MODULES
    assert standalone_pad.pad_assets() == (latent_pad.HTML, latent_pad.CSS, latent_pad.JS)


# ---- packing ---------------------------------------------------------------------------------


def test_codes_dequantise_to_code_times_step_rounded_once_to_float32():
    codes = np.array([0, 1, -1, 3, 2**29, -(2**29), 7, -7])
    steps = np.array([0.1, np.float32(1 / 3)], np.float32)
    want = [np.float32(float(c) * float(steps[i // 4])) for i, c in enumerate(codes)]  # float64 product, one rounding
    assert standalone_pad.dequantise(codes, steps).tolist() == want
    assert np.array_equal(standalone_pad.unzigzag(standalone_pad.zigzag(codes)), codes)
    assert standalone_pad.zigzag(np.array([0, -1, 1, -2, 2])).tolist() == [0, 1, 2, 3, 4]
    values = np.array([0.26, -0.04, 0.05, 1.0], np.float32)
    assert standalone_pad.quantise(values, np.array([0.1, 0.5], np.float32)).tolist() == [3, 0, 0, 2]


def linear_layer(weight: np.ndarray, bias: np.ndarray) -> dict:
    return {"format": standalone_pad.browser_export.FORMAT, "layers": [
        {"type": "linear", "shape": list(weight.shape), "weight": standalone_pad.browser_export.encode_f32(weight),
         "bias": standalone_pad.browser_export.encode_f32(bias)}, {"type": "sigmoid"}]}


def test_a_linear_map_gets_the_coarsest_step_that_keeps_the_tolerance_and_unpacks_to_it():
    """y = W z + b on known points: the chosen step keeps the change within the tolerance, the next
    coarser one (a factor sqrt(2)) does not, and the packed export unpacks to exactly the values measured."""
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((6, 3)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    z = rng.uniform(-3, 3, (50, 3))

    def change(values: list[np.ndarray]) -> float:
        wq, bq = values[0].reshape(6, 3).astype(np.float64), values[1].astype(np.float64)
        return float(np.abs(z @ (wq - w).T + (bq - b)).max())

    def on(steps: list[np.ndarray]) -> list[np.ndarray]:  # the weights as the browser gets them
        return [standalone_pad.dequantise(standalone_pad.quantise(v, s), s) for v, s in zip((w, b), steps, strict=True)]

    steps, measured = standalone_pad.choose_steps([w, b], change)
    tol = standalone_pad.PACK_TOLERANCE
    assert measured == change(on(steps)) <= tol
    assert change(on([(s * np.float32(2**0.5)).astype(np.float32) for s in steps])) > tol
    assert np.allclose(steps[0] / w.std(), steps[1] / b.std())  # one relative step for all tensors
    plain = standalone_pad.unpack_decoder(standalone_pad.pack_export(linear_layer(w, b), steps, measured))
    got = [standalone_pad.browser_export.decode_f32(plain["layers"][0][key]) for key in ("weight", "bias")]
    assert change(got) == measured and np.abs(got[0] - w.ravel()).max() <= steps[0][0] / 2


def test_rows_whose_outputs_barely_move_get_coarser_steps():
    """A per-output weight (a sigmoid's slope: pixels always black or white barely move) lets those
    rows of the output layer take coarser steps; the whole stays within the tolerance."""
    rng = np.random.default_rng(1)
    w, b = rng.standard_normal((4, 5)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    z, slope = rng.uniform(-2, 2, (40, 5)), np.array([1.0, 1e-3, 0.25, 1e-5])

    def per_output(values: list[np.ndarray]) -> np.ndarray:
        wq, bq = values[0].reshape(4, 5).astype(np.float64), values[1].astype(np.float64)
        return (np.abs(z @ (wq - w).T + (bq - b)) * slope).max(0)

    steps, measured = standalone_pad.choose_steps([w, b], lambda v: float(per_output(v).max()), 4, per_output)
    assert measured <= standalone_pad.PACK_TOLERANCE and len(steps[0]) == len(steps[1]) == 4
    assert steps[0][3] > steps[0][1] > steps[0][2] >= steps[0][0]  # the flatter the output, the coarser its row
    plain = standalone_pad.unpack_decoder(standalone_pad.pack_export(linear_layer(w, b), steps, measured))
    assert float(per_output([standalone_pad.browser_export.decode_f32(plain["layers"][0][k]) for k in ("weight", "bias")]).max()) == measured


def float64_decode(model, weights: list[np.ndarray], z: np.ndarray) -> torch.Tensor:
    """The decode with `weights` in float64 arithmetic, as the browser computes it."""
    net = copy.deepcopy(model.decoder).double()
    for p, w in zip(net.parameters(), weights, strict=True):
        p.data.copy_(torch.from_numpy(w.astype(np.float64).reshape(p.shape)))
    with torch.no_grad():
        return torch.sigmoid(net(torch.from_numpy(z).double()))


def test_packed_weights_decode_within_the_tolerance_and_unpack_to_a_plain_export(pair):
    model = load_checkpoint(pair[0]).model
    probe = np.random.default_rng(0).normal(0, 2, (500, 2)).astype(np.float32)
    packed = standalone_pad.pack_decoder(model, probe)
    assert packed["packed"]["max_change"] <= standalone_pad.PACK_TOLERANCE
    plain = standalone_pad.unpack_decoder(packed)
    assert "packed" not in plain and {k: v for k, v in plain.items() if k != "layers"} == {
        k: v for k, v in packed.items() if k not in ("layers", "packed")
    }
    # the unpacked weights, evaluated as the browser does, decode the probe within the tolerance of PyTorch's decode
    weights = [standalone_pad.browser_export.decode_f32(layer[key]) for layer in plain["layers"] for key in ("weight", "bias") if key in layer]
    with torch.no_grad():
        change = float((float64_decode(model, weights, probe) - model.decode(torch.from_numpy(probe)).double()).abs().max())
    assert change == pytest.approx(packed["packed"]["max_change"], abs=1e-12) and change <= standalone_pad.PACK_TOLERANCE
    # the output layer's rows have steps of their own
    assert packed["layers"][-2]["weight"]["rows"] == 64 and packed["layers"][0]["weight"]["rows"] == 1


def test_a_tolerance_no_step_keeps_gives_the_finest_steps(pair, monkeypatch):
    monkeypatch.setattr(standalone_pad, "PACK_TOLERANCE", -1.0)
    model = load_checkpoint(pair[0]).model
    packed = standalone_pad.pack_decoder(model, np.ones((3, 2), np.float32))
    plain = standalone_pad.unpack_decoder(packed)
    original = standalone_pad.browser_export.export_decoder(model)
    for mine, theirs in zip(plain["layers"], original["layers"], strict=True):
        for key in ("weight", "bias"):
            if key in mine:
                got, want = (standalone_pad.browser_export.decode_f32(x[key]) for x in (mine, theirs))
                assert np.abs(got - want).max() <= 1e-8 * np.abs(want).max()


# ---- the hole meter's parts: the judge, q(z), the encoder, while the file fits -----------------


@pytest.fixture(scope="module")
def meter_parts(pair):
    """The pair, a judge (the recipe's net with seeded random weights: no training), q(z)'s
    samples and the map, for standalone_html."""
    from vae.analysis.judge import DEFAULT_RECIPE, Judge, build_net
    from vae.analysis.layers import posterior_sample
    from vae.analysis.maps import compute_map
    from vae.core.data import load_dataset

    data = load_dataset("digits")
    torch.manual_seed(0)
    judge = Judge(build_net(data.image_shape, len(data.class_names)), tuple(data.class_names), data.image_shape, 0.5, DEFAULT_RECIPE,
                  "random-judge", 0.0)
    decoders = standalone_pad.load_pair(*pair)
    lmap, index = compute_map(decoders[0][1].model, data.x_test, "identity", decoders[0][1].sha256, cache=False)
    posteriors = [posterior_sample(ckpt.model, data.x_test) for _, ckpt in decoders]
    return decoders, judge, posteriors, lmap, data.y_test[index].numpy(), data.class_names


def meter_file(meter_parts, max_bytes: int = standalone_pad.MAX_FILE_BYTES) -> str:
    decoders, judge, posteriors, lmap, labels, names = meter_parts
    return standalone_pad.standalone_html(decoders, lmap, labels, names, map_id="m", axis_titles=("z1", "z2"), judge=judge,
                                          posteriors=posteriors, max_bytes=max_bytes)


def test_the_file_holds_the_judge_packed_within_the_tolerance_q_and_the_encoders(meter_parts):
    judge = meter_parts[1]
    text = meter_file(meter_parts)
    vae, ae = embedded_data(text)["meters"]
    assert vae["absent"] == [] and ae["absent"] == []
    assert vae["judge"]["id"] == ae["judge"]["id"] and ae["judge"]["export"] is None  # one judge, sent once
    assert vae["posterior"]["export"]["logvar"] is not None and ae["posterior"] is None  # an AE's q(z) is points: n/a
    assert vae["encoder"]["export"]["layers"] and ae["encoder"]["export"]["layers"]
    packed = vae["judge"]["export"]
    assert packed["packed"]["max_change"] <= standalone_pad.PACK_TOLERANCE
    # the unpacked judge's probabilities on decodes of the points export measured on (those the pad can
    # reach) stay within the tolerance of the float32 judge's; on other points, within the pad's 1e-4
    net = copy.deepcopy(judge.net)
    weights = [standalone_pad.browser_export.decode_f32(layer[key]) for layer in standalone_pad.unpack_decoder(packed)["layers"]
               for key in ("weight", "bias") if key in layer]
    for p, w in zip(net.parameters(), weights, strict=True):
        p.data.copy_(torch.from_numpy(w.reshape(p.shape)))
    decoders, lmap = meter_parts[0], meter_parts[3]
    probe = torch.from_numpy(standalone_pad.reachable_points(lmap, standalone_pad.map_ranges(lmap, 2, np.zeros(2, np.float32))))
    elsewhere = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for z, bound in ((probe, standalone_pad.PACK_TOLERANCE), (elsewhere, 1e-4)):
            x = torch.cat([ckpt.model.decode(z) for _, ckpt in decoders])
            change = float((torch.softmax(net(x), 1) - torch.softmax(judge.net(x), 1)).abs().max())
            assert change <= bound, (len(z), change)


def test_what_would_pass_the_bound_is_left_out_and_the_meter_says_so(meter_parts):
    full = meter_file(meter_parts)
    meters = embedded_data(full)["meters"]
    encoders = sum(len(json.dumps(m["encoder"])) for m in meters)
    # room for everything but the encoders: the judge and q(z) stay, the round trip is "not in this file"
    vae, ae = embedded_data(meter_file(meter_parts, len(full.encode()) - encoders + 200))["meters"]
    assert vae["judge"]["export"] is not None and vae["posterior"] is not None
    assert vae["encoder"] is None and ae["encoder"] is None and vae["absent"] == ["encoder"] and ae["absent"] == ["encoder"]
    # no room for any part: no meter at all, and the file still holds the decoders
    bare = meter_file(meter_parts, 1)
    assert embedded_data(bare)["meters"] is None and len(embedded_data(bare)["decoders"]) == 2


@pytest.mark.slow
def test_a_pair_of_the_default_size_gets_the_judge_and_q_within_2_mb(tmp_path):
    """The default 2-D MNIST pair's shapes (MLP 2 -> 400 -> 784 decoders, the judge's recipe on 28x28;
    seeded random weights, no training): the packed decoders leave room for the judge and the VAE's
    q(z) within MAX_FILE_BYTES (the trained pair: tests/e2e/test_standalone_pad_browser.py)."""
    from dataclasses import replace

    from vae.analysis.judge import DEFAULT_RECIPE, Judge, build_net
    from vae.analysis.layers import posterior_sample
    from vae.analysis.maps import compute_map
    from vae.core.data import load_dataset
    from vae.services.workflow import default_run

    data = load_dataset("mnist-bundled")
    model_config, train_config = default_run(data)
    assert model_config.arch == "mlp" and model_config.hidden == (400,) and model_config.latent_dim == 2
    paths = [save_checkpoint(tmp_path / f"d-{kind}", build_model(replace(model_config, kind=kind), seed=k), train_config,
                             {"name": data.name, "image_shape": [1, 28, 28]}, pair="d") for k, kind in enumerate(("vae", "ae"))]
    torch.manual_seed(0)
    judge = Judge(build_net(data.image_shape, 10), tuple(data.class_names), data.image_shape, 0.5, DEFAULT_RECIPE, "random-judge", 0.0)
    decoders = standalone_pad.load_pair(*paths)
    lmap, index = compute_map(decoders[0][1].model, data.x_test, "identity", decoders[0][1].sha256, cache=False)
    text = standalone_pad.standalone_html(decoders, lmap, data.y_test[index].numpy(), data.class_names, map_id="m", axis_titles=("z1", "z2"),
                                          judge=judge, posteriors=[posterior_sample(c.model, data.x_test) for _, c in decoders])
    assert len(text.encode("utf-8")) <= standalone_pad.MAX_FILE_BYTES
    vae, ae = embedded_data(text)["meters"]
    assert vae["judge"]["export"]["packed"]["max_change"] <= standalone_pad.PACK_TOLERANCE and ae["judge"]["id"] == vae["judge"]["id"]
    assert vae["posterior"] is not None and vae["absent"] == ae["absent"] == ["encoder"]  # the encoders (float32: 1.7 MB each) do not fit


# ---- the command -----------------------------------------------------------------------------


def test_export_pad_writes_one_file_that_loads_nothing_from_elsewhere(pair, tmp_path):
    out = tmp_path / "pad.html"
    code, stdout, err = run(["export-pad", str(pair[0]), str(pair[1]), "--out", str(out)])
    assert code == 0, err
    assert stdout.startswith(f"wrote {out}")
    text = out.read_text(encoding="utf-8")
    # nothing the browser would fetch: no src / href attributes, no URL of any scheme, no import
    assert not re.search(r"\b(src|href)\s*=", text)
    assert not re.search(r"\b(https?|wss?|ftp):", text)
    assert not re.search(r"\bimport\s*\(|^\s*import\s", text, re.M)
    for name in standalone_pad.js_modules():  # each script of the Live pad is in it (its first line)
        assert (PAD_ASSETS / name).read_text(encoding="utf-8").splitlines()[0] in text
    assert text.count("</script>") == 2  # the data and the module: nothing inside ends them early
    data = embedded_data(text)
    assert [d["label"] for d in data["decoders"]] == ["VAE", "AE"]
    assert data["test_hooks"] is False and data["z_in"] == {"z": [0.0, 0.0], "nonce": 0}
    assert data["map"]["class_names"] == [str(i) for i in range(10)] and len(data["map"]["export"]["labels"]) == data["map"]["export"]["n"]
    # the same keys as the Live pad's data dict: one builder for both
    assert set(data) == set(standalone_pad.pad_data(
        pad_id="x", decoders=[], map_id="m", map_export=None, ranges=((0, 1), (0, 1)), axis_titles=("a", "b"),
        class_names=[], sliders=None, z=np.zeros(2), z_nonce=0, image_px=1, test_hooks=False, meters=None,
    ))


def test_export_pad_of_a_vae_alone_and_with_test_hooks(pair, tmp_path):
    out = tmp_path / "vae.html"
    assert run(["export-pad", str(pair[0]), "--out", str(out), "--test-hooks"])[0] == 0
    data = embedded_data(out.read_text(encoding="utf-8"))
    assert [d["label"] for d in data["decoders"]] == ["VAE"] and data["test_hooks"] is True


def test_export_pad_refuses_a_pickle(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    assert_one_line_error(run(["export-pad", str(path), "--out", str(tmp_path / "x.html")]), "pickle")
    assert not (tmp_path / "x.html").exists()


@pytest.mark.parametrize("content", [b"", b"\x00" * 7, b"not a checkpoint at all, just some text"], ids=["empty", "short", "text"])
def test_export_pad_refuses_a_broken_file(tmp_path, content):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(content)
    assert_one_line_error(run(["export-pad", str(path), "--out", str(tmp_path / "x.html")]))


def test_export_pad_refuses_a_missing_file(tmp_path):
    assert_one_line_error(run(["export-pad", str(tmp_path / "nope.safetensors")]), "nope.safetensors")


def test_export_pad_refuses_an_ae_where_the_vae_belongs(pair, tmp_path):
    assert_one_line_error(run(["export-pad", str(pair[1]), "--out", str(tmp_path / "x.html")]), "must be a VAE")
    assert_one_line_error(run(["export-pad", str(pair[1]), str(pair[0]), "--out", str(tmp_path / "x.html")]), "must be a VAE")


def test_export_pad_refuses_a_vae_where_the_ae_belongs(pair, tmp_path):
    assert_one_line_error(run(["export-pad", str(pair[0]), str(pair[0]), "--out", str(tmp_path / "x.html")]), "must be an AE")


@pytest.mark.parametrize("other", [{"latent_dim": 3}, {"dataset": "mnist-bundled"}], ids=["latent-size", "dataset"])
def test_export_pad_refuses_a_pair_of_different_datasets_or_latent_sizes(tiny_model_config, tmp_path, other):
    vae = save_untrained(tmp_path / "a-vae", tiny_model_config)
    ae = save_untrained(tmp_path / "b-ae", tiny_model_config, kind="ae", **other)
    assert_one_line_error(run(["export-pad", str(vae), str(ae), "--out", str(tmp_path / "x.html")]), "do not make a pair")
    assert not (tmp_path / "x.html").exists()


def test_export_pad_refuses_a_folder_as_the_output(pair, tmp_path):
    assert_one_line_error(run(["export-pad", str(pair[0]), "--out", str(tmp_path)]), "out:")


@pytest.mark.parametrize(("dim", "method", "titles"), [(1, "identity", ["z₁", ""]), (3, "pca", ["PCA 1", "PCA 2"])])
def test_export_pad_draws_a_strip_for_1d_and_a_pca_map_above_2d(tiny_model_config, tmp_path, dim, method, titles):
    vae = save_untrained(tmp_path / "v-vae", tiny_model_config, latent_dim=dim)
    ae = save_untrained(tmp_path / "v-ae", tiny_model_config, kind="ae", latent_dim=dim)
    assert run(["export-pad", str(vae), str(ae), "--out", str(tmp_path / "pad.html")])[0] == 0
    data = embedded_data((tmp_path / "pad.html").read_text(encoding="utf-8"))
    assert data["map"]["export"]["method"] == method and data["map"]["axis_titles"] == titles
    assert data["map"]["export"]["latent_dim"] == dim and data["z_in"]["z"] == [0.0] * dim
