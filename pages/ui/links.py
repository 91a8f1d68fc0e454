"""A view's link, the Streamlit side: the URL's query parameters read once per session (the
model, z and presenter mode; vae.services.links parses them), their notes shown on the page
the link opened, and the "Copy link" control of Explore, Compare and the Live pad.

Light (Streamlit and vae.services.links, without numpy until a page uses it): app.py reads the link before its first paint,
since presenter mode decides the page's styling.

The flow of one link, all in the first run of a session (or the run after the URL changed):
read_link keeps the link's model request and z in session state and sets presenter mode; the
sidebar (app.py) selects the model whose content hash matches (pages.ui.session.link_label);
the page the URL names takes z with take_z. What is left is dropped at the end of that run
(end_of_run), so a z meant for one model never lands on another later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import streamlit as st

from pages.ui.frame import presenting, set_presenting
from vae.services.links import LinkState, fit_z, link_params, model_hash, parse_link

if TYPE_CHECKING:
    import numpy as np

_SEEN = "_link_seen"  # the query parameters this session has applied: each link is applied once
_MODEL = "_link_model"  # the link's LinkState while its model is still to be selected (this run)
_Z = "_link_z"  # the link's z until the page takes it (this run)
_NOTES = "_link_notes"  # (page url path, notes): what the link asked that was ignored, shown on that page


def read_link(page: str) -> None:
    """Apply the URL's query parameters if this session has not yet: presenter mode now, the
    model and z for the sidebar and the page of this run. `page` is the page's URL path."""
    params = st.query_params.to_dict()  # the last value of a repeated key
    seen = tuple(sorted(params.items()))
    if st.session_state.get(_SEEN) == seen:
        return
    st.session_state[_SEEN] = seen
    state, notes = parse_link(params)
    if state.present is not None:
        set_presenting(state.present)
    st.session_state[_MODEL] = state if state.model is not None or state.model_hash is not None else None
    st.session_state[_Z] = state.z
    st.session_state[_NOTES] = (page, notes)


def requested_model() -> LinkState | None:
    """The link's model request of this run, if any (the sidebar resolves it once)."""
    return st.session_state.pop(_MODEL, None)


def add_note(note: str, drop_z: bool = False) -> None:
    """One more thing the link asked that is ignored; `drop_z`: its z goes too (another model's)."""
    page, notes = st.session_state.get(_NOTES) or ("", [])
    st.session_state[_NOTES] = (page, [*notes, note])
    if drop_z:
        st.session_state[_Z] = None


def show_notes(page: str) -> None:
    """The link's notes, at the top of the page it opened, until another page is shown."""
    held = st.session_state.get(_NOTES)
    if not held:
        return
    if held[0] != page:
        st.session_state.pop(_NOTES, None)
        return
    for note in held[1]:
        st.warning(note[0].upper() + note[1:] + ".", icon=":material/link_off:")


def take_z(latent_dim: int) -> np.ndarray | None:
    """The link's z for this page's model (once), or None; a z of the wrong length is a note."""
    z = st.session_state.pop(_Z, None)
    if z is None:
        return None
    fitted, note = fit_z(z, latent_dim)
    if note:
        add_note(note)  # shown again on this page's later runs, by show_notes
        st.warning(note[0].upper() + note[1:] + ".", icon=":material/link_off:")
    return fitted


def end_of_run() -> None:
    """Whatever of the link this run did not use is dropped (e.g. a z on a page without one)."""
    st.session_state.pop(_Z, None)
    st.session_state.pop(_MODEL, None)


def view_link(name: str, shas: Sequence[str], z: np.ndarray | None) -> str:
    """The link of this view: this page's URL (st.context.url, without its query) with the model,
    z and presenter mode; a relative "?..." where the URL is unknown (AppTest)."""
    state = LinkState(name, model_hash(shas), None if z is None else tuple(float(v) for v in z.ravel()), presenting() or None)
    return (st.context.url or "") + "?" + urlencode(link_params(state), safe=",")


_COPY_HTML = '<div class="cl"><button type="button" class="cl-btn">Copy link</button><span class="cl-done" aria-live="polite"></span></div>'
_COPY_CSS = """
.cl { display: flex; align-items: center; gap: 0.6rem; font-family: inherit; }
.cl-btn { font: inherit; padding: 0.3rem 0.8rem; border: 1px solid rgba(49, 51, 63, 0.25); border-radius: 0.5rem;
          background: white; color: inherit; cursor: pointer; }
.cl-btn:hover { border-color: #ff4b4b; color: #ff4b4b; }
.cl-done { font-size: 0.9em; color: #555; }
"""
# navigator.clipboard needs a secure context (https, or localhost): elsewhere the button says so
# and the link stays selectable in the code block beside it (whose own copy icon Streamlit draws).
_COPY_JS = """
export default function ({ parentElement, data }) {
  const btn = parentElement.querySelector('.cl-btn'), done = parentElement.querySelector('.cl-done');
  btn.onclick = async () => {
    try { await navigator.clipboard.writeText(data.link); done.textContent = 'copied'; }
    catch (e) { done.textContent = 'this browser refused: copy the link from the box'; }
  };
}
"""
_copy_component = st.components.v2.component("latent_explorer_copy_link", html=_COPY_HTML, css=_COPY_CSS, js=_COPY_JS)


def copy_link(name: str, shas: Sequence[str], z: np.ndarray | None, key: str) -> str:
    """The "Copy link" control: a button (the browser's clipboard) and the link in a code block
    (Streamlit's own copy icon, or select it by hand). Returns the link."""
    link = view_link(name, shas, z)
    with st.popover("Link to this view", icon=":material/link:"):
        _copy_component(key=key, data={"link": link})
        st.code(link, language=None, wrap_lines=True)
        st.caption("Opens this page on the same model (if the server still has it, unchanged) at the same z"
                   + (", in presenter mode." if presenting() else "."))
    return link

