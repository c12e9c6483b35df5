"""The networks: backbones, heads, shared layers and the official-checkpoint converters (no training code)."""
