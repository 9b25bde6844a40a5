"""The central API server: a Flask application over the time-series store."""
