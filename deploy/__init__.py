"""Running the dashboard as more than one server: N Streamlit replicas behind nginx (run.py)."""
