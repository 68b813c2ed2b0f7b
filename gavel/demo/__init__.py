"""``make demo``: a scripted marketplace story on the embedded default, then the API served."""
