import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import nibble  # noqa: E402
from nibble import tools  # noqa: E402


def shared_dir():
    d = os.environ.get("NIBBLE_SHARED_DIR") or os.path.join(
        HERE, "..", "..", "..", "shared")
    return os.path.abspath(d) if os.path.isdir(d) else None


@pytest.fixture
def shared():
    d = shared_dir()
    if d is None:
        pytest.skip("shared models not found (set NIBBLE_SHARED_DIR or place "
                    "../shared beside the checkout)")
    return d


@pytest.fixture(scope="session")
def synthetic_tokenizer(tmp_path_factory):
    """The llama2.c vocabulary of the project's synthetic model (512
    pieces), written by quant-import --synthetic."""
    d = tmp_path_factory.mktemp("synthetic")
    tools.run_tool("quant-import", [d, "--synthetic"])
    return str(d / "tokenizer.bin")


SMALL = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2,
         "vocab_size": 512, "max_position_embeddings": 128,
         "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
         "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2}
