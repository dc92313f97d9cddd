"""A Llama-family decoder as a tree of small numpy modules.

The modules hold float32 numpy weights under the Hugging Face names
(`model.layers.0.self_attn.q_proj.weight`, ...) and compute the same forward
pass as Nibble's C++ reference (RMSNorm, rotary attention with grouped-query
heads in the rotate-half convention, SwiGLU MLP, tied or untied lm_head), in
float32. `LlamaModel.save(dir)` writes a Hugging Face directory
(config.json, model.safetensors, the tokenizer) that `quant-compile` and
`quant-import` read, so the float IR of a Python model is the one the C++
builder emits for it (`quant-import DIR --emit-ir`).
"""

import json
import os
import shutil

import numpy as np

from . import safetensors
from .errors import NibbleError


class Module:
    """A node of the model tree: named children and float32 parameters."""

    def __init__(self):
        self._params = {}
        self._children = {}

    def param(self, name, array):
        self._params[name] = np.ascontiguousarray(array, dtype=np.float32)

    def child(self, name, module):
        self._children[name] = module
        return module

    def state_dict(self, prefix=""):
        out = {prefix + k: v for k, v in self._params.items()}
        for name, c in self._children.items():
            out.update(c.state_dict(prefix + name + "."))
        return out


class _Weighted(Module):
    """A module with one parameter, `weight` (edit it in place)."""

    def __init__(self, weight):
        super().__init__()
        self.param("weight", weight)

    @property
    def weight(self):
        return self._params["weight"]


class Embedding(_Weighted):
    def __call__(self, tokens):
        return self.weight[np.asarray(tokens)]


class Linear(_Weighted):
    """y = x W^T, W of shape [out, in] (no bias, as in Llama)."""

    def __call__(self, x):
        return (x @ self.weight.T).astype(np.float32)


class RMSNorm(Module):
    def __init__(self, weight, eps):
        super().__init__()
        self.param("weight", weight)
        self.eps = float(eps)

    def __call__(self, x):
        ms = np.mean(x.astype(np.float32) ** 2, axis=-1, keepdims=True)
        return (x / np.sqrt(ms + np.float32(self.eps)) *
                self._params["weight"]).astype(np.float32)


class Attention(Module):
    """Causal rotary attention; `heads` query heads over `kv_heads`
    key/value heads (head h reads key/value head h // (heads // kv_heads))."""

    def __init__(self, q, k, v, o, heads, kv_heads, theta):
        super().__init__()
        self.q_proj = self.child("q_proj", Linear(q))
        self.k_proj = self.child("k_proj", Linear(k))
        self.v_proj = self.child("v_proj", Linear(v))
        self.o_proj = self.child("o_proj", Linear(o))
        self.heads, self.kv_heads, self.theta = heads, kv_heads, float(theta)
        self.head_dim = q.shape[0] // heads

    def rope(self, x, positions):
        # x [T, heads, hd]; rotate-half pairing (Hugging Face).
        hd = self.head_dim
        inv = 1.0 / (self.theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
        ang = np.outer(positions, inv).astype(np.float32)  # [T, hd/2]
        cos = np.cos(ang)[:, None, :]
        sin = np.sin(ang)[:, None, :]
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin],
                              axis=-1).astype(np.float32)

    def __call__(self, x):
        T = x.shape[0]
        hd = self.head_dim
        pos = np.arange(T)
        q = self.rope(self.q_proj(x).reshape(T, self.heads, hd), pos)
        k = self.rope(self.k_proj(x).reshape(T, self.kv_heads, hd), pos)
        v = self.v_proj(x).reshape(T, self.kv_heads, hd)
        group = self.heads // self.kv_heads
        out = np.empty((T, self.heads, hd), np.float32)
        mask = np.triu(np.ones((T, T), bool), 1)
        for h in range(self.heads):
            g = h // group
            s = (q[:, h, :] @ k[:, g, :].T) / np.float32(np.sqrt(hd))
            s = np.where(mask, -np.inf, s)
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            p = s / s.sum(axis=-1, keepdims=True)
            out[:, h, :] = p @ v[:, g, :]
        return self.o_proj(out.reshape(T, self.heads * hd))


class MLP(Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, gate, up, down):
        super().__init__()
        self.gate_proj = self.child("gate_proj", Linear(gate))
        self.up_proj = self.child("up_proj", Linear(up))
        self.down_proj = self.child("down_proj", Linear(down))

    def __call__(self, x):
        g = self.gate_proj(x)
        return self.down_proj((g / (1.0 + np.exp(-g))) * self.up_proj(x))


class DecoderLayer(Module):
    def __init__(self, attn_norm, attn, mlp_norm, mlp):
        super().__init__()
        self.input_layernorm = self.child("input_layernorm", attn_norm)
        self.self_attn = self.child("self_attn", attn)
        self.post_attention_layernorm = self.child("post_attention_layernorm",
                                                   mlp_norm)
        self.mlp = self.child("mlp", mlp)

    def __call__(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


_REQUIRED = ("hidden_size", "intermediate_size", "num_hidden_layers",
             "num_attention_heads", "vocab_size")


class LlamaModel(Module):
    """The decoder built from a Hugging Face style config dict."""

    def __init__(self, config, weights):
        super().__init__()
        missing = [k for k in _REQUIRED if k not in config]
        if missing:
            raise NibbleError("config: missing " + ", ".join(missing))
        c = dict(config)
        c.setdefault("num_key_value_heads", c["num_attention_heads"])
        c.setdefault("rms_norm_eps", 1e-6)
        c.setdefault("rope_theta", 10000.0)
        c.setdefault("max_position_embeddings", 2048)
        c.setdefault("tie_word_embeddings", "lm_head.weight" not in weights)
        self.config = c
        self.tokenizer_path = None

        # A tied checkpoint may store the shared matrix as lm_head.weight
        # only (tinystories-656k does); save() keeps the name it came with.
        self._tied_name = "model.embed_tokens.weight"
        if c["tie_word_embeddings"] and \
                "model.embed_tokens.weight" not in weights and \
                "lm_head.weight" in weights:
            weights = dict(weights)
            weights["model.embed_tokens.weight"] = weights["lm_head.weight"]
            self._tied_name = "lm_head.weight"

        def w(name):
            if name not in weights:
                raise NibbleError(f"weights: missing tensor {name}")
            return weights[name]

        eps, H, KV = c["rms_norm_eps"], c["num_attention_heads"], \
            c["num_key_value_heads"]
        model = self.child("model", Module())
        self.embed_tokens = model.child("embed_tokens",
                                        Embedding(w("model.embed_tokens.weight")))
        layers = model.child("layers", Module())
        self.layers = []
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            layer = DecoderLayer(
                RMSNorm(w(p + "input_layernorm.weight"), eps),
                Attention(w(p + "self_attn.q_proj.weight"),
                          w(p + "self_attn.k_proj.weight"),
                          w(p + "self_attn.v_proj.weight"),
                          w(p + "self_attn.o_proj.weight"), H, KV,
                          c["rope_theta"]),
                RMSNorm(w(p + "post_attention_layernorm.weight"), eps),
                MLP(w(p + "mlp.gate_proj.weight"), w(p + "mlp.up_proj.weight"),
                    w(p + "mlp.down_proj.weight")))
            self.layers.append(layer)
        self.norm = model.child("norm", RMSNorm(w("model.norm.weight"), eps))
        self.lm_head = None
        if not c["tie_word_embeddings"]:
            self.lm_head = self.child("lm_head", Linear(w("lm_head.weight")))
        self._renumber()

    def _renumber(self):
        layers = self._children["model"]._children["layers"]
        layers._children = {str(i): l for i, l in enumerate(self.layers)}
        self.config["num_hidden_layers"] = len(self.layers)

    @classmethod
    def random(cls, config, seed=0, scale=None):
        """A model of `config` with random weights (uniform, unit-variance
        outputs), for experiments and tests."""
        rng = np.random.default_rng(seed)
        c = dict(config)
        D, F, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
        H = c["num_attention_heads"]
        KV = c.get("num_key_value_heads", H)
        hd = D // H

        def m(rows, cols):
            a = scale if scale else np.sqrt(3.0 / cols)
            return rng.uniform(-a, a, (rows, cols)).astype(np.float32)

        def n(size):
            return (1.0 + rng.uniform(-0.1, 0.1, size)).astype(np.float32)

        w = {"model.embed_tokens.weight": m(V, D), "model.norm.weight": n(D)}
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            w.update({p + "input_layernorm.weight": n(D),
                      p + "post_attention_layernorm.weight": n(D),
                      p + "self_attn.q_proj.weight": m(H * hd, D),
                      p + "self_attn.k_proj.weight": m(KV * hd, D),
                      p + "self_attn.v_proj.weight": m(KV * hd, D),
                      p + "self_attn.o_proj.weight": m(D, H * hd),
                      p + "mlp.gate_proj.weight": m(F, D),
                      p + "mlp.up_proj.weight": m(F, D),
                      p + "mlp.down_proj.weight": m(D, F)})
        if not c.get("tie_word_embeddings", True):
            w["lm_head.weight"] = m(V, D)
        c.setdefault("tie_word_embeddings", True)
        return cls(c, w)

    def remove_layer(self, index):
        """Drops decoder layer `index` (the later ones move up)."""
        if not 0 <= index < len(self.layers):
            raise NibbleError(f"remove_layer: no layer {index} "
                              f"(the model has {len(self.layers)})")
        del self.layers[index]
        self._renumber()

    def state_dict(self, prefix=""):
        out = super().state_dict(prefix)
        if self._tied_name != "model.embed_tokens.weight":
            out[prefix + self._tied_name] = out.pop(
                prefix + "model.embed_tokens.weight")
        return out

    def __call__(self, tokens):
        """Logits [T, vocab] of `tokens` from position 0 (float32)."""
        x = self.embed_tokens(tokens).astype(np.float32)
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)
        head = self.lm_head.weight if self.lm_head else self.embed_tokens.weight
        return (x @ head.T).astype(np.float32)

    def save(self, directory, tokenizer=None):
        """Writes a Hugging Face directory: config.json, model.safetensors
        (float32) and the tokenizer (a tokenizer.json, llama2.c
        tokenizer.bin or SentencePiece .model file, copied; default: the one
        the model was loaded with). Each file is written atomically."""
        tok = tokenizer or self.tokenizer_path
        if not tok:
            raise NibbleError("save: no tokenizer (pass tokenizer=PATH: a "
                              "tokenizer.json, tokenizer.bin or .model file)")
        os.makedirs(directory, exist_ok=True)
        c = dict(self.config)
        c.setdefault("architectures", ["LlamaForCausalLM"])
        c.setdefault("model_type", "llama")
        c.setdefault("hidden_act", "silu")
        c["torch_dtype"] = "float32"
        safetensors.write(os.path.join(directory, "model.safetensors"),
                          self.state_dict(), {"format": "pt"})
        _write_text(os.path.join(directory, "config.json"),
                    json.dumps(c, indent=2, sort_keys=True) + "\n")
        name = os.path.basename(tok)
        if os.path.abspath(tok) != os.path.abspath(
                os.path.join(directory, name)):
            tmp = os.path.join(directory, "." + name + ".tmp")
            shutil.copyfile(tok, tmp)
            os.replace(tmp, os.path.join(directory, name))
        return directory


def _write_text(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def load_hf(directory):
    """Loads a Hugging Face Llama directory (config.json, one or several
    safetensors files) into a LlamaModel; f16/bf16 weights are widened to
    float32. Tensors stay memory-mapped until used."""
    cfg_path = os.path.join(directory, "config.json")
    try:
        with open(cfg_path) as f:
            config = json.load(f)
    except OSError as e:
        raise NibbleError(f"{cfg_path}: cannot read: {e.strerror}")
    except ValueError as e:
        raise NibbleError(f"{cfg_path}: not JSON: {e}")
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    weights = {}
    for name in files:
        for t, (dt, a) in safetensors.read(os.path.join(directory, name)).items():
            if dt == "BF16":
                a = safetensors.bf16_to_f32(a)
            weights[t] = np.asarray(a, dtype=np.float32)
    model = LlamaModel(config, weights)
    for tok in ("tokenizer.json", "tokenizer.model", "tokenizer.bin"):
        if os.path.exists(os.path.join(directory, tok)):
            model.tokenizer_path = os.path.join(directory, tok)
            break
    return model
