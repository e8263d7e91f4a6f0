"""A small vision-language-action driving policy (Qwen2.5-VL backbone) with a codebook-token head or a
flow-matching action expert. `transformers` is imported only when a VLA is built (style rule 20)."""

from agents.vla.config import FlowStart, Head, Preset, VLAConfig

__all__ = ["FlowStart", "Head", "Preset", "VLAConfig"]
