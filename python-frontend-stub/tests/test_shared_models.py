"""The Hugging Face loader on the shared tinystories-656k model (skips
without ../shared)."""

import json
import os

import numpy as np

import nibble
from nibble import safetensors

GREEDY_656K = ("Once upon a time, there was a little girl named Lily. She had "
               "a toy car that she loved very much.")


def test_hf_loader_round_trips_tinystories(tmp_path, shared):
    src = os.path.join(shared, "models", "tinystories-656k")
    model = nibble.load_hf(src)
    assert model.tokenizer_path.endswith("tokenizer.json")
    model.save(tmp_path)
    a = safetensors.read(os.path.join(src, "model.safetensors"))
    b = safetensors.read(tmp_path / "model.safetensors")
    assert sorted(a) == sorted(b)
    for name, (dt, arr) in a.items():
        assert dt == "F32" and np.array_equal(arr, b[name][1]), name
    with open(os.path.join(src, "config.json")) as f:
        orig = json.load(f)
    with open(tmp_path / "config.json") as f:
        saved = json.load(f)
    for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
              "num_attention_heads", "num_key_value_heads", "vocab_size",
              "rope_theta", "rms_norm_eps", "tie_word_embeddings"):
        assert saved[k] == orig[k], k
    # The saved directory compiles into a bundle that tells the known story
    # and whose logits are the numpy forward's.
    with nibble.compile(str(tmp_path), output=str(tmp_path / "f.nbl"),
                        format="f32", context=128, prefill_chunk=4) as bundle:
        assert bundle.generate("", max_tokens=40).startswith(GREEDY_656K)
        tokens = bundle.tokenize("Once upon a time, a dog")
        got, want = bundle.logits(tokens), model(tokens)
        assert np.abs(got - want).max() < 1e-3 * (want.max() - want.min())


def test_edited_tinystories_compiles_and_runs(tmp_path, shared):
    model = nibble.load_hf(os.path.join(shared, "models", "tinystories-656k"))
    model.layers[1].mlp.down_proj.weight[:] *= 0.5  # copy-on-write map
    model.remove_layer(0)
    tokens = [1, 300, 17, 99]
    want = model(tokens)
    with nibble.compile(model, output=str(tmp_path / "e.nbl"), format="f32",
                        context=64, prefill_chunk=4) as b:
        got = b.logits(tokens)
        assert np.abs(got - want).max() < 1e-3 * (want.max() - want.min())
        assert b.manifest["model"]["layers"] == 1
    # The checkpoint on disk is untouched by the edit.
    again = nibble.load_hf(os.path.join(shared, "models", "tinystories-656k"))
    assert not np.array_equal(again.layers[1].mlp.down_proj.weight,
                              model.layers[0].mlp.down_proj.weight)
