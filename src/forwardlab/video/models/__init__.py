"""Video networks: architectures, their pretrained weights and the converters that load them.

`registry` holds the records and the name -> entry mapping; each family registers its own entries
(`torchvision_zoo`, `i3d`, `tiny`; trained folders through `trained`); `catalog` is where callers look
models up.
"""
