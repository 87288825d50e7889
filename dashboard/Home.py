"""Entry point: `streamlit run dashboard/Home.py`. It makes the project importable, keeps Keras's state
safe from Streamlit, and routes; each page is a small file in views/."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the one place: `streamlit run` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import keras_guard, server_guard, ui  # noqa: E402

keras_guard.install()
server_guard.install()  # limits a shared server needs that Streamlit has no setting for
st.set_page_config(page_title="MNIST model comparison", page_icon=":material/pin:", layout="wide")
st.html(ui.PAGE_CSS)

VIEWS = ROOT / "dashboard" / "views"
PAGES = [
    st.Page(VIEWS / "home.py", title="Home", icon=":material/home:", default=True),
    st.Page(VIEWS / "dataset.py", title="Dataset", icon=":material/grid_view:", url_path="dataset"),
    st.Page(VIEWS / "training_curves.py", title="Training", icon=":material/show_chart:", url_path="training"),
    st.Page(VIEWS / "results.py", title="Results", icon=":material/leaderboard:", url_path="results"),
    st.Page(VIEWS / "calibration.py", title="Calibration", icon=":material/speed:", url_path="calibration"),
    st.Page(VIEWS / "misclassified.py", title="Misclassified", icon=":material/image_search:",
            url_path="misclassified"),
    st.Page(VIEWS / "draw.py", title="Draw", icon=":material/draw:", url_path="draw"),
    st.Page(VIEWS / "collection.py", title="Your digits", icon=":material/collections:", url_path="collection"),
    st.Page(VIEWS / "beyond.py", title="Beyond MNIST", icon=":material/public:", url_path="beyond"),
    st.Page(VIEWS / "train_a_model.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page(VIEWS / "inside.py", title="Inside", icon=":material/neurology:", url_path="inside"),
]

st.navigation(PAGES, position="top").run()
