"""Training and fine-tuning registry models (`forwardlab video train`).

`run.train` is the entry point: it picks the data, prepares the model (`model`), feeds it augmented clips
(`data`) through the optimizer and schedule (`loop`), and writes checkpoints, metrics and the model card.
"""
