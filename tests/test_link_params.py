"""A view's link (vae/services/links.py): parsed and formatted without Streamlit; whatever is
unknown or malformed is ignored with a note, never an exception."""

from __future__ import annotations

import numpy as np
import pytest

from vae.services.links import LinkState, fit_z, link_params, match_model, model_hash, parse_link

VAE_SHA, AE_SHA = "1a2b3c4d5e6f" + "0" * 52, "abcdef012345" + "f" * 52
PAIR = model_hash([VAE_SHA, AE_SHA])


def test_a_state_survives_its_link_params() -> None:
    z = np.array([0.12, -1.5, 3.0], np.float32)
    state = LinkState("mnist-2d", PAIR, tuple(float(v) for v in z), True)
    params = link_params(state)
    assert params == {"model": "mnist-2d", "hash": "1a2b3c4d5e6f-abcdef012345", "z": "0.12,-1.5,3", "present": "1"}
    back, notes = parse_link(params)
    assert notes == []
    assert back.model == state.model and back.model_hash == state.model_hash and back.present
    assert back.z is not None and np.array_equal(np.float32(back.z), z)  # exactly the same float32 values


def test_float32_values_read_back_exactly() -> None:
    z = np.random.default_rng(0).normal(0, 5, 64).astype(np.float32)
    back, notes = parse_link(link_params(LinkState(z=tuple(float(v) for v in z))))
    assert not notes and np.array_equal(np.asarray(back.z, np.float32), z)


@pytest.mark.parametrize(("params", "field", "words"), [
    ({"z": "1,abc"}, "z", "numbers separated by commas"),
    ({"z": "nan,0"}, "z", "finite"),
    ({"z": "inf"}, "z", "finite"),
    ({"z": "1e300,0"}, "z", "within"),
    ({"z": ",".join(["0"] * 65)}, "z", "at most 64"),
    ({"hash": "xyz"}, "model_hash", "hex digits"),
    ({"hash": "1a2b3c4d5e6f-12"}, "model_hash", "hex digits"),
    ({"present": "maybe"}, "present", "present=1"),
    ({"model": "a\x00b"}, "model", "not a name"),
    ({"model": "m" * 201}, "model", "not a name"),
])
def test_a_malformed_parameter_is_ignored_with_a_note(params: dict, field: str, words: str) -> None:
    state, notes = parse_link(params)
    assert getattr(state, field) is None
    assert len(notes) == 1 and words in notes[0], notes


def test_unknown_parameters_are_named_and_streamlits_own_are_not() -> None:
    state, notes = parse_link({"zz": "1", "foo": "2", "embed": "true", "present": "1"})
    assert state == LinkState(present=True)
    assert notes == ["ignored the link's unknown parameters 'foo', 'zz'"]


def test_a_repeated_parameter_counts_as_its_last_value() -> None:
    state, _ = parse_link({"present": ["0", "1"], "z": ["1", "2,3"]})
    assert state.present is True and state.z == (2.0, 3.0)


@pytest.mark.parametrize(("flag", "value"), [("1", True), ("true", True), ("0", False), ("off", False)])
def test_present_flag(flag: str, value: bool) -> None:
    assert parse_link({"present": flag})[0].present is value


OPTIONS = {
    "mnist-2d (VAE + AE pair)": ("mnist-2d", PAIR),
    "other  (VAE, mlp, 2-D, digits)": ("other", model_hash([AE_SHA])),
}


def test_the_model_is_found_by_its_hash_even_renamed() -> None:
    assert match_model(LinkState("mnist-2d", PAIR), OPTIONS) == ("mnist-2d (VAE + AE pair)", None)
    assert match_model(LinkState("renamed", PAIR), OPTIONS) == ("mnist-2d (VAE + AE pair)", None)


def test_a_stale_or_missing_model_is_a_note() -> None:
    label, note = match_model(LinkState("mnist-2d", model_hash([AE_SHA, VAE_SHA])), OPTIONS)
    assert label is None and note is not None and "content hash differs" in note
    label, note = match_model(LinkState("gone", "0" * 12), OPTIONS)
    assert label is None and note is not None and "not on this server" in note


def test_without_a_hash_the_name_decides() -> None:
    assert match_model(LinkState("other"), OPTIONS) == ("other  (VAE, mlp, 2-D, digits)", None)
    assert match_model(LinkState(), OPTIONS) == (None, None)


def test_z_of_the_wrong_length_is_a_note() -> None:
    z, note = fit_z((1.0, 2.0, 3.0), 2)
    assert z is None and note is not None and "3 values" in note and "has 2" in note
    z, note = fit_z((1.0, 2.0), 2)
    assert note is None and z is not None and z.dtype == np.float32 and z.tolist() == [1.0, 2.0]
