"""Peer frameworks measured beside duragent (``make bench-peers``); run inside ``.venv-peers``."""
