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


def test_round_mantissa_keeps_the_high_bits_and_rounds_to_nearest():
    x = np.array([1.0, 1.0 + 2**-23, 1.0 + 2**-14, -3.0, 0.0], np.float32)
    assert np.array_equal(standalone_pad.round_mantissa(x, 0), x)
    out = standalone_pad.round_mantissa(x, 9)
    assert out[0] == 1.0 and out[1] == 1.0 and out[2] == np.float32(1.0 + 2**-14) and out[3] == -3.0 and out[4] == 0.0
    assert (out.view(np.uint32) & 0x1FF == 0).all()


def test_packed_weights_decode_within_the_tolerance_and_unpack_to_a_plain_export(pair):
    model = load_checkpoint(pair[0]).model
    probe = np.random.default_rng(0).normal(0, 2, (500, 2)).astype(np.float32)
    packed = standalone_pad.pack_decoder(model, probe)
    assert packed["packed"]["max_change"] <= standalone_pad.PACK_TOLERANCE
    plain = standalone_pad.unpack_decoder(packed)
    assert "packed" not in plain and {k: v for k, v in plain.items() if k != "layers"} == {
        k: v for k, v in packed.items() if k not in ("layers", "packed")
    }
    # the unpacked weights in the model decode the probe within the tolerance of the original
    rounded = build_model(model.config)
    rounded.load_state_dict(model.state_dict())
    weights = [standalone_pad.browser_export.decode_f32(layer[key]) for layer in plain["layers"] for key in ("weight", "bias") if key in layer]
    for p, w in zip(rounded.decoder.parameters(), weights, strict=True):
        p.data.copy_(torch.from_numpy(w.reshape(p.shape)))
    with torch.no_grad():
        z = torch.from_numpy(probe)
        change = float((rounded.decode(z) - model.decode(z)).abs().max())
    assert change <= standalone_pad.PACK_TOLERANCE


def test_a_decoder_no_rounding_can_keep_is_packed_in_full_float32(pair, monkeypatch):
    monkeypatch.setattr(standalone_pad, "PACK_TOLERANCE", 0.0)
    model = load_checkpoint(pair[0]).model
    packed = standalone_pad.pack_decoder(model, np.ones((3, 2), np.float32))
    assert packed["packed"]["bytes_per_value"] == 4 and packed["packed"]["mantissa_bits"] == 23
    assert standalone_pad.unpack_decoder(packed) == standalone_pad.browser_export.export_decoder(model)


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
    # the unpacked judge's probabilities on decoded images stay within the tolerance of the float32 judge's
    net = copy.deepcopy(judge.net)
    weights = [standalone_pad.browser_export.decode_f32(layer[key]) for layer in standalone_pad.unpack_decoder(packed)["layers"]
               for key in ("weight", "bias") if key in layer]
    for p, w in zip(net.parameters(), weights, strict=True):
        p.data.copy_(torch.from_numpy(w.reshape(p.shape)))
    with torch.no_grad():
        x = meter_parts[0][0][1].model.decode(torch.randn(64, 2))
        change = float((torch.softmax(net(x), 1) - torch.softmax(judge.net(x), 1)).abs().max())
    assert change <= standalone_pad.PACK_TOLERANCE


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
