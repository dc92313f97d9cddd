"""Running bundles through libnibble_runtime.so (ctypes, no compiler).

`Bundle(path)` opens a bundle with the runtime's C API
(include/nibble/Runtime/nibble_runtime.h): the checksums, version and CPU
features are checked there, and every failure raises NibbleError with the
runtime's own message.
"""

import ctypes
import json
import math
import os

import numpy as np

from .errors import NibbleError
from . import tools

_lib = None


def _load():
    global _lib
    if _lib is not None:
        return _lib
    path = tools.find_runtime_library()
    lib = ctypes.CDLL(path)
    P, I32, I64, SZ = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64, \
        ctypes.c_size_t
    sig = {
        "nibble_last_error": (ctypes.c_char_p, []),
        "nibble_bundle_open": (P, [ctypes.c_char_p]),
        "nibble_bundle_close": (None, [P]),
        "nibble_bundle_manifest": (ctypes.c_char_p, [P]),
        "nibble_bundle_vocab": (I32, [P]),
        "nibble_bundle_context": (I64, [P]),
        "nibble_bundle_bos": (I32, [P]),
        "nibble_bundle_eos": (I32, [P]),
        "nibble_tokenize": (I64, [P, ctypes.c_char_p, SZ, ctypes.c_int,
                                  ctypes.POINTER(I32), SZ]),
        "nibble_detokenize": (P, [P, ctypes.POINTER(I32), SZ]),
        "nibble_free_string": (None, [P]),
        "nibble_session_create": (P, [P, ctypes.c_int]),
        "nibble_session_free": (None, [P]),
        "nibble_session_reset": (ctypes.c_int, [P]),
        "nibble_session_prefill": (ctypes.c_int, [P, ctypes.POINTER(I32), SZ,
                                                  ctypes.POINTER(ctypes.c_float)]),
        "nibble_session_decode": (ctypes.c_int, [P, I32]),
        "nibble_session_logits": (ctypes.POINTER(ctypes.c_float), [P]),
        "nibble_sample": (I32, [ctypes.POINTER(ctypes.c_float), I32,
                                ctypes.c_float, ctypes.c_float,
                                ctypes.POINTER(ctypes.c_uint64)]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    _lib = lib
    return lib


def _error():
    msg = _load().nibble_last_error()
    return NibbleError(msg.decode() if msg else "unknown runtime error")


def _ids(tokens):
    a = np.ascontiguousarray(tokens, dtype=np.int32)
    return a, a.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))


class Bundle:
    """An opened bundle. Use as a context manager, or call close()."""

    def __init__(self, path, threads=1):
        lib = _load()
        self.path = os.fspath(path)
        self._h = lib.nibble_bundle_open(self.path.encode())
        if not self._h:
            raise _error()
        self.threads = threads
        self.manifest = json.loads(lib.nibble_bundle_manifest(self._h))
        self.vocab = lib.nibble_bundle_vocab(self._h)
        self.context = lib.nibble_bundle_context(self._h)
        self.bos = lib.nibble_bundle_bos(self._h)
        self.eos = lib.nibble_bundle_eos(self._h)

    def close(self):
        if getattr(self, "_h", None):
            _load().nibble_bundle_close(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def card(self):
        """The quantization card (a dict): formats and methods per tensor,
        calibration data, activations, KV cache, evaluation, speed."""
        return self.manifest["card"]

    # --- tokenizer --------------------------------------------------------
    def tokenize(self, text, bos=True):
        lib = _load()
        raw = text.encode()
        n = lib.nibble_tokenize(self._h, raw, len(raw), int(bos), None, 0)
        if n < 0:
            raise _error()
        out = np.zeros(n, np.int32)
        lib.nibble_tokenize(self._h, raw, len(raw), int(bos),
                            out.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                            n)
        return out

    def detokenize(self, ids, raw=False):
        """The text of `ids`; `raw=True`: its bytes (byte-level tokens need
        not form UTF-8), else decoded with U+FFFD for invalid bytes."""
        lib = _load()
        a, p = _ids(ids)
        s = lib.nibble_detokenize(self._h, p, a.size)
        if not s:
            raise _error()
        try:
            b = ctypes.string_at(s)
        finally:
            lib.nibble_free_string(s)
        return b if raw else b.decode("utf-8", "replace")

    # --- running ----------------------------------------------------------
    def _session(self):
        s = _load().nibble_session_create(self._h, self.threads)
        if not s:
            raise _error()
        return s

    def logits(self, tokens):
        """Logits [len(tokens), vocab] (float32) of `tokens` run from
        position 0 in a fresh session."""
        s = self._session()
        try:
            return self._prefill_logits(s, tokens)
        finally:
            _load().nibble_session_free(s)

    def _prefill_logits(self, session, tokens):
        """Resets `session` and returns the logits of `tokens` from 0."""
        lib = _load()
        a, p = _ids(tokens)
        out = np.zeros((a.size, self.vocab), np.float32)
        if lib.nibble_session_reset(session) != 0 or \
                lib.nibble_session_prefill(
                    session, p, a.size,
                    out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))) != 0:
            raise _error()
        return out

    def generate(self, prompt, max_tokens=64, temperature=0.0, top_p=1.0,
                 seed=0):
        """Text generated after `prompt` (BOS first), stopping at EOS:
        temperature 0 is greedy, else sampling with nucleus `top_p` seeded by
        `seed` (nibble_sample)."""
        return self.detokenize(self.generate_ids(prompt, max_tokens,
                                                 temperature, top_p, seed))

    def generate_ids(self, prompt, max_tokens=64, temperature=0.0, top_p=1.0,
                     seed=0):
        """The ids generate() detokenizes."""
        lib = _load()
        a, p = _ids(self.tokenize(prompt))
        s = self._session()
        rng = ctypes.c_uint64(seed)
        out = []
        try:
            if lib.nibble_session_prefill(s, p, a.size, None) != 0:
                raise _error()
            for _ in range(max_tokens):
                t = lib.nibble_sample(lib.nibble_session_logits(s), self.vocab,
                                      temperature, top_p, ctypes.byref(rng))
                if t < 0:
                    raise _error()
                if t == self.eos:
                    break
                out.append(t)
                if len(a) + len(out) >= self.context or \
                        lib.nibble_session_decode(s, t) != 0:
                    break
        finally:
            lib.nibble_session_free(s)
        return out

    def perplexity(self, text, first_token=None, max_tokens=16384,
                   window=None):
        """Perplexity of `text` computed as `quant-run perplexity` does
        (docs/runtime.md), from this package's own ctypes logits: the text
        is tokenized without BOS; tokens from `first_token` (default: the end
        of the card's calibration slice when the card records this same
        text, else 0) are cut into whole windows of `window` tokens (default
        min(context - 1, 256)), each run from position 0 with BOS prepended,
        and every window token is scored. A slice overlapping the recorded
        calibration slice is refused. Returns a dict with the keys of
        quant-run's --json that it computes."""
        import hashlib
        ids = self.tokenize(text, bos=False)
        total = len(ids)
        bos = self.bos >= 0
        max_window = self.context - 1 if bos else self.context
        window = window or min(max_window, 256)
        if window > max_window:
            raise NibbleError(f"window {window}: the bundle's context is "
                              f"{self.context}")
        cal = self.card().get("calibration")
        cal = cal if isinstance(cal, dict) else {}
        same = cal.get("sha256") == hashlib.sha256(text.encode()).hexdigest()
        cal_slice = same and "first_token" in cal and "end_token" in cal
        if first_token is None:
            first_token = cal["end_token"] if cal_slice else 0
        if first_token >= total:
            raise NibbleError(f"first token {first_token} is not before the "
                              f"end of the text ({total} tokens)")
        end = min(total, first_token + min(max_tokens, total))
        windows = (end - first_token) // window
        if windows == 0:
            raise NibbleError(f"tokens [{first_token}, {end}) hold fewer "
                              f"than one window of {window} tokens")
        scored_end = first_token + windows * window
        if cal_slice and first_token < cal["end_token"] and \
                cal["first_token"] < scored_end:
            raise NibbleError(
                f"tokens [{first_token}, {scored_end}) overlap the "
                f"calibration slice [{cal['first_token']}, "
                f"{cal['end_token']}) of this text")
        nll = 0.0
        session = self._session()  # one session, reset per window
        try:
            for w in range(windows):
                win = ids[first_token + w * window:
                          first_token + (w + 1) * window]
                if bos:
                    inp, targets = np.concatenate([[self.bos], win[:-1]]), win
                else:
                    inp, targets = win[:-1], win[1:]
                lg = self._prefill_logits(session, inp).astype(np.float64)
                m = lg.max(axis=1)
                lse = m + np.log(np.exp(lg - m[:, None]).sum(axis=1))
                nll += float((lse - lg[np.arange(len(targets)),
                                       targets]).sum())
        finally:
            _load().nibble_session_free(session)
        scored = windows * (window if bos else window - 1)
        return {"perplexity": math.exp(nll / scored), "tokens_scored": scored,
                "first_token": first_token, "end_token": scored_end,
                "window_tokens": window, "mean_nll": nll / scored,
                "nll_sum": nll}


def _eval(self, reference, text=None, workload=None, first_token=None,
          max_tokens=4096):
    """Compares this bundle with `reference` (a Bundle or a bundle path,
    normally the float bundle of the same model) as `quant-run eval` does:
    on `text` (a file path) perplexity of both, KL(reference || this) and
    top-1 agreement of the next-token distributions; on `workload` (a JSONL
    file: prompt, expected, match, max_tokens) both pass rates and every
    example's outputs. Returns quant-run's --json report as a dict."""
    if text is None and workload is None:
        raise NibbleError("eval: pass text=FILE, workload=FILE.jsonl or both")
    ref = reference.path if isinstance(reference, Bundle) else \
        os.fspath(reference)
    args = [self.path, "eval", "--reference", ref, "--json",
            "--max-tokens", max_tokens, "--threads", self.threads]
    if text is not None:
        args += ["--text", os.fspath(text)]
    if workload is not None:
        args += ["--workload", os.fspath(workload)]
    if first_token is not None:
        args += ["--first-token", first_token]
    return json.loads(tools.run_tool("quant-run", args))


Bundle.eval = _eval
