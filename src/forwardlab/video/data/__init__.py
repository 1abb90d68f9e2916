"""Video data sources: datasets on disk and the built-in synthetic generator."""
