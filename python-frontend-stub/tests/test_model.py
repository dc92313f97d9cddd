"""Models built and edited in Python compile, and their bundles compute what
the Python forward pass computes; nothing needs ../shared here."""

import json
import os
import subprocess

import numpy as np
import pytest

import nibble
from nibble import safetensors, tools

from conftest import SMALL


def max_rel_diff(a, b):
    return float(np.abs(a - b).max() / (b.max() - b.min()))


def test_safetensors_round_trip_and_errors(tmp_path):
    t = {"a": np.arange(6, dtype=np.float32).reshape(2, 3),
         "b": np.ones(4, np.float16), "c": np.array([1, -2], np.int8)}
    p = tmp_path / "x.safetensors"
    safetensors.write(p, t)
    back = safetensors.read(p)
    for k, v in t.items():
        assert back[k][1].dtype == v.dtype and np.array_equal(back[k][1], v)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(nibble.NibbleError, match="runs past the end"):
        safetensors.read(bad)
    with pytest.raises(nibble.NibbleError, match="cannot be stored"):
        safetensors.write(tmp_path / "y.safetensors",
                          {"z": np.zeros(2, np.complex64)})


def test_python_model_compiles_and_matches_its_forward(tmp_path,
                                                       synthetic_tokenizer):
    model = nibble.LlamaModel.random(SMALL, seed=3)
    model.tokenizer_path = synthetic_tokenizer
    tokens = [1, 300, 17, 99, 5, 260, 261, 8, 42, 77]
    want = model(tokens)
    with nibble.compile(model, output=str(tmp_path / "m.nbl"), format="f32",
                        context=64, prefill_chunk=4) as b:
        got = b.logits(tokens)
        assert got.shape == want.shape
        assert max_rel_diff(got, want) < 1e-4
        # The same model through the C++ float reference (quant-import's
        # greedy generation) picks the tokens the bundle picks.
        model.save(tmp_path / "hf")
        ref = tools.run_tool("quant-import", [
            tmp_path / "hf", "--tokenizer", synthetic_tokenizer,
            "--generate", "12", "--prompt", "the cat"], raw=True)
        ids = b.generate_ids("the cat", max_tokens=12)
        assert len(ids) == 12
        assert ref.rstrip(b"\n").endswith(b.detokenize(ids, raw=True))
        card = b.card()
        assert card["weights"]["format"] == "f32"
        assert card["calibration"] == "not used (float bundle)"


def test_edited_model_compiles_and_runs(tmp_path, synthetic_tokenizer):
    model = nibble.LlamaModel.random(dict(SMALL, num_hidden_layers=3), seed=5)
    model.remove_layer(1)
    assert len(model.layers) == 2 and model.config["num_hidden_layers"] == 2
    assert "model.layers.2.mlp.up_proj.weight" not in model.state_dict()
    model.layers[0].mlp.down_proj.weight[:] *= 0.5  # edit a weight in place
    model.tokenizer_path = synthetic_tokenizer
    tokens = [1, 5, 9, 300, 301]
    with nibble.compile(model, output=str(tmp_path / "e.nbl"),
                        format="int8", group=0, context=64,
                        prefill_chunk=4) as b:
        got = b.logits(tokens)
        # int8 per channel stays close to the float forward of the edit.
        assert max_rel_diff(got, model(tokens)) < 0.02
        assert b.card()["weights"]["format"] == "int8"


def test_errors_carry_the_tools_messages(tmp_path, synthetic_tokenizer):
    model = nibble.LlamaModel.random(SMALL, seed=1)
    model.tokenizer_path = synthetic_tokenizer
    out = tmp_path / "never.nbl"
    with pytest.raises(nibble.NibbleError, match="group size 48 does not "
                       "divide the 64 columns"):
        nibble.compile(model, output=str(out), format="int4", group=48)
    assert not out.exists()
    with pytest.raises(nibble.NibbleError, match="needs calibration"):
        nibble.compile(model, output=str(out), method="gptq")
    bad = tmp_path / "bad.nbl"
    bad.write_bytes(b"NOPE" * 32)
    with pytest.raises(nibble.NibbleError, match=str(bad)):
        nibble.Bundle(bad)
    with pytest.raises(nibble.NibbleError, match="missing tensor"):
        nibble.LlamaModel(SMALL, {})
    with pytest.raises(nibble.NibbleError, match="no tokenizer"):
        nibble.LlamaModel.random(SMALL).save(tmp_path / "x")


def test_torch_modules_import(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch (python3-torch) is "
                                "not installed")
    model = nibble.LlamaModel.random(SMALL, seed=2)

    class Wrapper(torch.nn.Module):
        def __init__(self, sd):
            super().__init__()
            self.params = torch.nn.ParameterDict(
                {k.replace(".", "__"): torch.nn.Parameter(torch.tensor(v))
                 for k, v in sd.items()})

        def state_dict(self, *a, **k):
            return {n.replace("__", "."): p for n, p in
                    self.params.items()}

    from nibble.torch_import import from_torch
    back = from_torch(Wrapper(model.state_dict()), config=SMALL)
    tokens = [1, 2, 3, 4]
    assert np.array_equal(back(tokens), model(tokens))


def test_float_ir_is_the_cpp_builders(synthetic_tokenizer):
    model = nibble.LlamaModel.random(SMALL, seed=4)
    ir = nibble.float_ir(model, seq_len=8, tokenizer=synthetic_tokenizer)
    assert "func.func @forward(%arg0: tensor<8xi32>" in ir or \
        "func.func @forward(" in ir
    assert 'nibble.linear = "model.layers.1.mlp.down_proj"' in ir
    assert "dense_resource<model.layers.0.self_attn.q_proj.weight>" in ir
    assert "dialect_resources" not in ir  # names only, no weight bytes
