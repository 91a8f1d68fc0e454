"""The app's frame before any heavy import: the one place that touches Streamlit's private
pages-folder switch, the favicon, and the navigation links. Imports nothing but Streamlit, so
that app.py can paint its navigation and a start-up screen before torch is loaded."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

# Styling every page shares, set before any heavy import so the start-up screen has it too:
# pixel-crisp upscaled images, captions readable on a projector, and less empty space above the
# title (Streamlit's default top padding is 6rem: at 1280x720 a tenth of the screen).
PAGE_CSS = """<style>
img { image-rendering: pixelated; }
[data-testid="stCaptionContainer"], [data-testid="stImageCaption"] { color: #262730; font-size: 1rem; }
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
</style>"""

# Presenter mode (a projector at the back of a room): every text at least 20 px (the root font
# is 20 px, so 1rem is; what Streamlit draws smaller is raised to 1rem), key numbers at least
# 24 px (1.2rem: the hole meter, measured comparisons; st.metric's values are larger already),
# less padding, so that a page's main view fits a 1280x720 screen without scrolling.
PRESENTER_CSS = """<style>
html { font-size: 20px; }
[data-testid="stApp"] [data-testid="stHeader"] { height: 2.8rem; min-height: 0; }
[data-testid="stMainBlockContainer"] { padding: 2.9rem 2rem 1rem 2rem; }
[data-testid="stMain"] h1 { font-size: 1.8rem; padding-top: 0; padding-bottom: 0.4rem; }
[data-testid="stMain"] h2, [data-testid="stMain"] h3 { font-size: 1.35rem; padding-top: 0.3rem; padding-bottom: 0.3rem; }
[data-testid="stMain"] :is([data-testid="stWidgetLabel"], [data-testid="stMarkdownContainer"], [data-testid="stCaptionContainer"],
  [data-testid="stImageCaption"], [data-testid="stTable"], [data-testid="stMetricLabel"], [data-testid="stCode"],
  [data-testid="stSliderThumbValue"], [data-testid="stSliderTickBarMin"], [data-testid="stSliderTickBarMax"],
  [data-testid="stAlertContainer"], [data-testid="stTooltipHoverTarget"], button) :is(p, li, span, div, td, th, code, label) {
  font-size: max(1rem, 1em);
}
[data-testid="stMain"] :is(input, textarea, [data-baseweb="select"] div) { font-size: max(1rem, 1em); }
[data-testid="stMain"] [data-testid="stTable"] td { font-size: 1.2rem; }
[data-testid="stMain"] [data-testid="stTable"] td:last-child { font-size: 1rem; }
[data-testid="stMain"] [class*="st-key-hole_meter"] strong { font-size: 1.2rem; }
[data-testid="stMain"] [data-testid="stMetricValue"] { font-size: max(1.6rem, 24px); }
</style>"""

PRESENTING = "presenting"  # session state: presenter mode on (the sidebar's toggle, or a link's ?present=1)
_PRESENTER_TOGGLE = "presenter_toggle"


def presenting() -> bool:
    """Whether this session is in presenter mode: the one question every page and widget asks
    (larger text, the sidebar collapsed, developer readouts hidden, images as large as fit)."""
    return bool(st.session_state.get(PRESENTING, False))


def set_presenting(on: bool) -> None:
    st.session_state[PRESENTING] = bool(on)


def page_style() -> None:
    """The styling of this run's page: the shared CSS, and presenter mode's (with the sidebar
    collapsed) when it is on."""
    if presenting():
        st.set_page_config(initial_sidebar_state="collapsed")
    st.markdown(PAGE_CSS + (PRESENTER_CSS if presenting() else ""), unsafe_allow_html=True)


def presenter_toggle() -> None:
    """The sidebar's presenter-mode switch. Its own key mirrors PRESENTING, which lives on while
    the widget is not drawn (Streamlit forgets a widget's state in a run that skips it)."""
    set_presenting(presenting())  # defined from the first run on
    st.session_state[_PRESENTER_TOGGLE] = presenting()
    st.sidebar.toggle(
        "Presenter mode", key=_PRESENTER_TOGGLE, on_change=lambda: set_presenting(st.session_state[_PRESENTER_TOGGLE]),
        help="For a projector: larger text and numbers, the sidebar collapsed, developer readouts hidden. "
             "A link with ?present=1 opens in it.",
    )


# Shipped with the app (not a ":material/...:" icon, which the browser fetched from a font host).
FAVICON = Path(__file__).with_name("favicon.png")


def pages_folder_mode_active() -> bool:
    """Whether Streamlit runs the old pages-folder mode (MPA v1) for this server.

    PRIVATE API: `PagesManager.uses_pages_directory` (Streamlit 1.67). Streamlit switches it on
    when a folder named `pages/` sits next to the main script (ours does: the project layout)
    and off when st.navigation is called. tests/app/test_frame.py fails if an upgrade moves it."""
    from streamlit.runtime.pages_manager import PagesManager

    return bool(PagesManager.uses_pages_directory)


def leave_pages_folder_mode() -> None:
    """Turn the pages-folder mode off and rerun, so that this request goes through app.py.

    On a fresh server's very first request Streamlit runs a page file directly (a deep link such
    as /compare without app.py: no sidebar, no models). `client.showSidebarNavigation = false`
    (.streamlit/config.toml) keeps that mode's raw module names out of the sidebar meanwhile.
    Called at the top of app.py and of pages/ui/session.py and pages/ui/widgets.py (every page
    imports them first), before any heavy import: Python drops a module whose import raised (the
    rerun), and a second session importing it meanwhile got "ImportError: cannot import name ...
    from 'pages'" (seen when the heavy imports came first)."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def keep_navigation_mode(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """For AppTest runs: behave as a real server does once app.py has called st.navigation.

    AppTest resets the private flag before every run, so without this each run after the first
    would execute the page file alone, without app.py's sidebar (PRIVATE API, see above)."""
    from streamlit.runtime.pages_manager import PagesManager

    init = PagesManager.__init__

    def init_then_navigation_mode(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init_then_navigation_mode)


def navigation_links(pages: list) -> None:  # type: ignore[type-arg]
    """The app's own page links, at the top of the sidebar (st.navigation runs with
    position="hidden": the config hides Streamlit's sidebar navigation, see above)."""
    with st.sidebar:
        for page in pages:
            st.page_link(page, width="stretch")
