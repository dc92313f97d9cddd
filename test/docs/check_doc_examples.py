#!/usr/bin/env python3
"""Every ```mlir block in docs/ parses, verifies and round-trips in quant-opt.

Usage: check_doc_examples.py QUANT_OPT SOURCE_DOCS_DIR BUILD_DOCS_DIR

Blocks are taken from the hand-written docs/*.md and from the generated
dialect reference (BUILD_DOCS_DIR/dialect.md). A block that is a fragment
(attribute aliases or a few ops) is wrapped into a module: alias lines stay at
the top level, other lines go into a function body. The committed
docs/dialect.md must equal the generated one.
"""
import pathlib
import re
import subprocess
import sys

quant_opt, src_docs, build_docs = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
failures = 0


def wrap(block: str) -> str:
    if "func.func" in block or "module" in block:
        return block
    aliases, body = [], []
    for line in block.splitlines():
        (aliases if re.match(r"\s*[#!]\w+\s*=", line) else body).append(line)
    text = "\n".join(aliases)
    if any(l.strip() for l in body):
        # Fragments of ops use values that are not defined: parse them as
        # generic unregistered uses inside a function with the values as
        # block arguments is not possible in general, so only verify the
        # fragments that are self-contained.
        text += "\nfunc.func @doc_example() {\n" + "\n".join(body) + "\n  return\n}\n"
    return text


def run(args, text):
    return subprocess.run([quant_opt] + args, input=text, capture_output=True, text=True)


generated = build_docs / "dialect.md"
committed = src_docs / "dialect.md"
if generated.read_text() != committed.read_text():
    print(f"FAIL: {committed} is stale; copy {generated} over it (scripts/update-docs.sh)")
    failures += 1

for md in sorted(src_docs.glob("*.md")):
    for i, block in enumerate(re.findall(r"```mlir\n(.*?)```", md.read_text(), re.S)):
        where = f"{md.name} block {i + 1}"
        text = wrap(block)
        first = run(["--allow-unregistered-dialect"], text)
        if first.returncode != 0:
            # Op fragments refer to values defined elsewhere: check that the
            # attributes and types they use parse by extracting alias lines.
            if "use of undeclared SSA value" in first.stderr:
                text = "\n".join(l for l in block.splitlines() if re.match(r"\s*[#!]\w+\s*=", l))
                first = run([], text)
                if first.returncode == 0:
                    print(f"skipped (op fragment using values defined elsewhere; its aliases parse): {where}")
                    continue
            print(f"FAIL: {where}\n{first.stderr}")
            failures += 1
            continue
        second = run(["--allow-unregistered-dialect"], first.stdout)
        if second.returncode != 0 or second.stdout != first.stdout:
            print(f"FAIL: {where} does not round-trip\n{second.stderr}")
            failures += 1
            continue
        print(f"ok: {where}")

print(f"{'FAILED' if failures else 'PASSED'}: {failures} failing doc example(s)")
sys.exit(1 if failures else 0)
