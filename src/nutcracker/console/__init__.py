"""The browser console (issue 15): a Streamlit app that is a client of the control API only.

It reaches the engine through ``nutcracker.api.client`` and nothing else: it never opens the
journal nor a key (import-linter holds it to that). ``app.py`` is the script Streamlit runs.
"""
