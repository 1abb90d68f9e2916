"""Video networks: architectures, their pretrained weights and the converters that load them."""
