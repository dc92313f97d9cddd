"""Bundles of a Python-built model measured through the package: its
perplexity over ctypes equals quant-run's, and eval compares a quantized
bundle with the float one (split from test_model.py to keep each CTest
test well under a minute on CI's two cores)."""

import json

import pytest

import nibble
from nibble import tools

from conftest import SMALL


def test_ctypes_perplexity_equals_quant_run(tmp_path, synthetic_tokenizer):
    model = nibble.LlamaModel.random(SMALL, seed=7)
    model.tokenizer_path = synthetic_tokenizer
    text = " ".join(["the little girl saw a big dog in the park"] * 60)
    tf = tmp_path / "t.txt"
    tf.write_text(text)
    with nibble.compile(model, output=str(tmp_path / "p.nbl"), format="int4",
                        group=32, context=64, prefill_chunk=4) as b:
        mine = b.perplexity(text, max_tokens=300)
        out = tools.run_tool("quant-run", [b.path, "perplexity", tf,
                                           "--max-tokens", "300", "--json"])
        theirs = json.loads(out)
        assert mine["tokens_scored"] == theirs["tokens_scored"]
        assert mine["perplexity"] == pytest.approx(theirs["perplexity"],
                                                   rel=1e-9)


def test_eval_against_the_float_bundle(tmp_path, synthetic_tokenizer):
    model = nibble.LlamaModel.random(SMALL, seed=9)
    model.tokenizer_path = synthetic_tokenizer
    text = tmp_path / "t.txt"
    text.write_text(" ".join(["the cat saw a big red ball"] * 40))
    wl = tmp_path / "w.jsonl"
    wl.write_text(json.dumps({"prompt": "the cat", "expected": "",
                              "match": "contains", "max_tokens": 2}) + "\n")
    ref = nibble.compile(model, output=str(tmp_path / "f.nbl"), format="f32",
                         context=64, prefill_chunk=4)
    q = nibble.compile(model, output=str(tmp_path / "q.nbl"), format="int4",
                       group=32, context=64, prefill_chunk=4)
    r = q.eval(ref, text=text, workload=wl)
    assert 0 < r["text"]["kl_mean"] < 1
    assert 0 < r["text"]["top1_agreement"] <= 1
    assert r["workload"]["pass_rate"] == 1.0  # "" is in every output
    same = ref.eval(ref.path, text=text)
    assert same["text"]["kl_mean"] == 0 and same["text"]["top1_agreement"] == 1
