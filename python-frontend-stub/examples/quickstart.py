#!/usr/bin/env python3
"""Quickstart: load (or build) a model in Python, edit it, compile it with
Nibble, run the bundle and read its quantization card.

    /usr/bin/python3 python-frontend-stub/examples/quickstart.py

Uses ../shared/models/tinystories-656k when present (a real trained model);
otherwise builds a small random model in Python (it writes word salad).
Needs a Nibble build (bash scripts/test.sh, or NIBBLE_BUILD_DIR)."""

import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import nibble  # noqa: E402
from nibble import tools  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
shared = os.environ.get("NIBBLE_SHARED_DIR",
                        os.path.join(here, "..", "..", "..", "shared"))
hf = os.path.join(shared, "models", "tinystories-656k")
work = tempfile.mkdtemp(prefix="nibble-quickstart-")

if os.path.isdir(hf):
    model = nibble.load_hf(hf)  # weights memory-mapped, as numpy arrays
    print(f"loaded {hf}: {len(model.layers)} layers, "
          f"vocab {model.config['vocab_size']}")
    calib = os.path.join(shared, "data", "tinystories_dev.txt")
else:
    # The project's synthetic vocabulary, and a random model built here.
    tools.run_tool("quant-import", [work, "--synthetic"])
    model = nibble.LlamaModel.random(
        {"hidden_size": 64, "intermediate_size": 192, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2,
         "vocab_size": 512, "max_position_embeddings": 256,
         "bos_token_id": 1, "eos_token_id": 2}, seed=0)
    model.tokenizer_path = os.path.join(work, "tokenizer.bin")
    print("shared models not found: a random model built in Python")
    calib = None

# Python forward pass (numpy), e.g. to inspect logits before compiling.
logits = model([1, 9, 20])
print("python forward logits:", logits.shape)

# Compile int8 weights per channel (no calibration needed) and run it.
bundle = nibble.compile(model, output=os.path.join(work, "int8.nbl"),
                        format="int8", group=0, context=256)
print("generated:", bundle.generate("Once upon a time", max_tokens=32))
card = bundle.card()
print("card: weights", card["weights"]["format"], card["weights"]["method"],
      "| activations:", card["activations"], "| KV cache:", card["kv_cache"])

# An edited model: drop the last decoder layer and compile again.
model.remove_layer(len(model.layers) - 1)
small = nibble.compile(model, output=os.path.join(work, "edited.nbl"),
                       format="int4", group=32, context=256)
print("edited model generated:", small.generate("Once upon a time",
                                                max_tokens=16))
if calib:
    print("perplexity (int8):",
          round(bundle.perplexity(open(calib).read(),
                                  first_token=8192,
                                  max_tokens=2048)["perplexity"], 3))
print("bundles in", work)
