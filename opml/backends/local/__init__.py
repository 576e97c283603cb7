"""The embedded local backend: a SQLite metadata file and an artifact folder."""
