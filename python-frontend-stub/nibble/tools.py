"""Where the compiler's tools and the runtime library are.

Looked up in this order: $NIBBLE_BUILD_DIR (a Nibble build directory, with
bin/ and lib/), the build/ directory of the checkout this package sits in,
then $PATH (tools) and the dynamic linker's search path (library).
"""

import os
import shutil
import subprocess

from .errors import NibbleError

_HERE = os.path.dirname(os.path.abspath(__file__))


def _build_dirs():
    dirs = []
    if os.environ.get("NIBBLE_BUILD_DIR"):
        dirs.append(os.environ["NIBBLE_BUILD_DIR"])
    dirs.append(os.path.join(_HERE, "..", "..", "build"))
    return [os.path.abspath(d) for d in dirs]


def find_tool(name):
    for d in _build_dirs():
        p = os.path.join(d, "bin", name)
        if os.access(p, os.X_OK):
            return p
    p = shutil.which(name)
    if p:
        return p
    raise NibbleError(f"{name} not found: build Nibble (bash scripts/test.sh) "
                      "or set NIBBLE_BUILD_DIR to its build directory")


def find_runtime_library():
    for d in _build_dirs():
        p = os.path.join(d, "lib", "libnibble_runtime.so")
        if os.path.exists(p):
            return p
    return "libnibble_runtime.so"  # the dynamic linker's search path


def run_tool(name, args, raw=False):
    """Runs a Nibble tool; its stdout on success (bytes with `raw`, else text
    with U+FFFD for invalid UTF-8), NibbleError carrying its error message
    (the last lines of stderr) on failure."""
    exe = find_tool(name)
    r = subprocess.run([exe] + [str(a) for a in args], capture_output=True)
    if r.returncode != 0:
        err = r.stderr.decode("utf-8", "replace")
        lines = [l for l in err.strip().splitlines() if l.strip()]
        msg = "\n".join(lines[-5:]) if lines else f"exit status {r.returncode}"
        raise NibbleError(msg)
    return r.stdout if raw else r.stdout.decode("utf-8", "replace")
