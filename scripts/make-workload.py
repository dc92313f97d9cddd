#!/usr/bin/env python3
"""Writes examples/workloads/*-next-word.jsonl: a next-word
workload cut from real text, with the answer taken from the text itself
(not from any model).

Each example is the start of a story up to the last word of one of its
first sentences; `expected` is that word, matched with `contains` against
the model's greedy continuation of at most 3 tokens. Stories are taken
from characters [300000, end) of ../shared/data/tinystories_dev.txt: far
past the calibration slice (tokens [0, 2048), about the first 9000
characters) and the perplexity slices of docs/accuracy.md (tokens
[8192, 16384), before character 80000).

Two files, one per tokenizer convention of the shared models: the
tinystories-656k tokenizer.json attaches a space to the word before it
("her ", "mom and "), so its prompts end with the space; stories260K's
SentencePiece vocabulary attaches it to the word after ("▁dad"), so its
prompts end at the last letter. Same examples otherwise.

    /usr/bin/python3 scripts/make-workload.py [TEXT] [OUT_DIR]
"""

import json
import os
import re
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
text_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    root, "..", "shared", "data", "tinystories_dev.txt")
out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
    root, "examples", "workloads")
START, COUNT = 300000, 60

with open(text_path, encoding="utf-8") as f:
    text = f.read()[START:]
# Whole stories: paragraphs that open one.
stories = [p.strip() for p in re.split(r"\n\s*\n", text)
           if p.strip().startswith("Once upon a time")]
examples = []
for story in stories:
    sentences = re.findall(r"[^.!?]+[.!?]", story)
    # The last word of the second (else first) sentence, if it is a plain
    # word of 3+ letters ending the sentence.
    for k in (1, 0):
        if k >= len(sentences):
            continue
        prefix = "".join(sentences[:k + 1]).strip()
        m = re.match(r"^(.*\S)\s+([A-Za-z]{3,})[.!?]$", prefix)
        if m and len(prefix.split()) <= 60:
            examples.append({"id": len(examples), "prompt": m.group(1),
                             "expected": m.group(2), "match": "contains",
                             "max_tokens": 3})
            break
    if len(examples) == COUNT:
        break
if len(examples) < COUNT:
    sys.exit(f"only {len(examples)} examples found")
os.makedirs(out_dir, exist_ok=True)
for name, suffix in (("tinystories-656k-next-word.jsonl", " "),
                     ("stories260k-next-word.jsonl", "")):
    out_path = os.path.join(out_dir, name)
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for e in examples:
            f.write(json.dumps(dict(e, prompt=e["prompt"] + suffix),
                               ensure_ascii=False) + "\n")
    os.replace(tmp, out_path)
    print(f"wrote {len(examples)} examples to {out_path}")
