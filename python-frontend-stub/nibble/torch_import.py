"""Importing torch.nn Llama-style modules (needs PyTorch; Debian's
python3-torch). Nothing here is imported by `import nibble`."""

import numpy as np

from .errors import NibbleError
from .model import LlamaModel


def from_torch(module, config=None):
    """A LlamaModel from a torch.nn.Module whose state_dict uses the Hugging
    Face Llama names (`model.embed_tokens.weight`,
    `model.layers.N.self_attn.q_proj.weight`, ...; a transformers
    LlamaForCausalLM is one). `config`: a Hugging Face config dict; default:
    `module.config.to_dict()` when the module has one."""
    try:
        import torch
    except ImportError as e:
        raise NibbleError("from_torch needs PyTorch (Debian: python3-torch): "
                          f"{e}")
    if config is None:
        cfg = getattr(module, "config", None)
        if cfg is None or not hasattr(cfg, "to_dict"):
            raise NibbleError("from_torch: pass config= (the module has no "
                              ".config.to_dict())")
        config = cfg.to_dict()
    weights = {}
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not name.endswith(".weight"):
                continue
            weights[name] = t.detach().to(torch.float32).cpu().numpy().astype(
                np.float32)
    return LlamaModel(config, weights)
