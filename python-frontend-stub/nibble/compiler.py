"""nibble.compile: a model (Python or on disk) to a bundle, by quant-compile."""

import contextlib
import os
import tempfile

from .model import LlamaModel
from .runtime import Bundle
from . import tools


def compile(model, output=None, calib=None, format="int4", method="rtn",
            group=32, asymmetric=False, recipe=None, target="native",
            context=None, prefill_chunk=None, kv_cache=None, act=None,
            tokenizer=None, extra_args=(), threads=1):
    """Compiles `model` (a LlamaModel, or a path quant-compile reads: a
    Hugging Face directory or a llama2.c .bin) into a bundle and opens it.

    The arguments are quant-compile's options (`format="f32"` for the
    unquantized bundle; `calib`: a text file, needed by gptq, awq, imatrix
    and recipes). A LlamaModel is written to a temporary Hugging Face
    directory first. `output` defaults to a file in a temporary directory.
    Compiler failures raise NibbleError with quant-compile's message; the
    output is never left half written (quant-compile renames it into
    place)."""
    with _on_disk(model, tokenizer) as (path, tok):
        if output is None:
            out_dir = tempfile.mkdtemp(prefix="nibble-bundle-")
            output = os.path.join(out_dir, "model.nbl")
        args = [path, "-o", output, "--format", format, "--quiet",
                "--target", target]
        if format != "f32":
            args += ["--method", method, "--group", group]
            if asymmetric:
                args.append("--asymmetric")
        for flag, value in (("--calib", calib), ("--recipe", recipe),
                            ("--context", context),
                            ("--prefill-chunk", prefill_chunk),
                            ("--kv-cache", kv_cache), ("--act", act),
                            ("--tokenizer", tok)):
            if value is not None:
                args += [flag, value]
        args += list(extra_args)
        tools.run_tool("quant-compile", args)
    return Bundle(output, threads=threads)


def float_ir(model, seq_len=64, tokenizer=None):
    """The float IR (MLIR text) of `model` (a LlamaModel or a checkpoint
    path), as the C++ builder emits it: `quant-import --emit-ir` on the
    saved Hugging Face directory. Weights are referenced by name
    (dense_resource), not pasted."""
    with _on_disk(model, tokenizer) as (path, _):
        return tools.run_tool("quant-import",
                              [path, "--emit-ir", "--seq-len", seq_len])


@contextlib.contextmanager
def _on_disk(model, tokenizer=None):
    """(path, tokenizer path or None) of `model` on disk: a LlamaModel is
    saved to a temporary Hugging Face directory for the duration (with its
    tokenizer copied beside it); a path is used as it is."""
    if not isinstance(model, LlamaModel):
        yield os.fspath(model), tokenizer
        return
    with tempfile.TemporaryDirectory(prefix="nibble-model-") as d:
        model.save(d, tokenizer=tokenizer)
        tok = tokenizer or model.tokenizer_path
        yield d, os.path.join(d, os.path.basename(tok))
