"""The video classification workbench: decoding, sampling, datasets, models and reports."""
