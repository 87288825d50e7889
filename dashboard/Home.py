"""Entry point: `streamlit run dashboard/Home.py`. It only routes; each page is a file in views/."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (HERE.parent, HERE):  # `import core` and `import common`, however Streamlit was started
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import streamlit as st

import session_models  # noqa: F401  (on import: stops Streamlit clearing Keras's state under live training)

st.set_page_config(page_title="MNIST model comparison", page_icon=":material/pin:", layout="wide")

PAGES = [
    st.Page(HERE / "views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page(HERE / "views/dataset.py", title="Dataset", icon=":material/grid_view:", url_path="dataset"),
    st.Page(HERE / "views/training.py", title="Training", icon=":material/show_chart:", url_path="training"),
    st.Page(HERE / "views/results.py", title="Results", icon=":material/leaderboard:", url_path="results"),
    st.Page(HERE / "views/misclassified.py", title="Misclassified", icon=":material/image_search:",
            url_path="misclassified"),
    st.Page(HERE / "views/draw.py", title="Draw", icon=":material/draw:", url_path="draw"),
    st.Page(HERE / "views/train_live.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page(HERE / "views/inside.py", title="Inside", icon=":material/neurology:", url_path="inside"),
]

st.navigation(PAGES, position="top").run()
