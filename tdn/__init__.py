"""TDN live action recognition: the model family, its weights, training and evaluation."""
from __future__ import annotations

__all__ = ["load_model", "create_model", "TDN", "TDNConfig"]


def __getattr__(name: str):
    # Lazy: `import tdn` (and the CLI's config parsing) must not pay for importing torch.
    if name == "load_model":
        from tdn.api import load_model
        return load_model
    if name in ("create_model", "TDN", "TDNConfig"):
        from tdn import model
        return getattr(model, name)
    raise AttributeError(f"module 'tdn' has no attribute {name!r}")
