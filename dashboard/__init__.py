"""The Streamlit app: ``Home.py`` routes, ``views/`` holds one small file per page, and beside them
what the pages share: cached artifact and model access (``cache``), the models a page shows
(``entries``), this session's training jobs (``session``), charts, pictures and page furniture (``ui``)."""
