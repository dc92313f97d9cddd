"""nibble: build or load a Llama-family model in Python, compile it with
Nibble's quant-compile, run the bundle through libnibble_runtime.so.

No MLIR bindings: the package speaks to the compiler through files (a
Hugging Face directory in, a bundle out) and to the runtime through its C
API (ctypes). Dependencies: numpy (and torch, optionally, for
nibble.torch_import).
"""

from .errors import NibbleError
from .model import (Attention, DecoderLayer, Embedding, Linear, LlamaModel,
                    MLP, Module, RMSNorm, load_hf)
from .runtime import Bundle
from .compiler import compile, float_ir

__all__ = ["NibbleError", "Module", "Embedding", "Linear", "RMSNorm",
           "Attention", "MLP", "DecoderLayer", "LlamaModel", "load_hf",
           "Bundle", "compile", "float_ir"]
