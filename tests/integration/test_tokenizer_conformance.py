"""Tokenizer conformance against a real published vocabulary (skipped unless
PB_TOKENIZER_DIR and PB_TOKENIZER_EXPECTED are set: CI has neither the files
nor the network). PB_TOKENIZER_DIR: a directory pe_tok_open_dir reads
(tokenizer.json, or vocab.json + merges.txt, ...); PB_TOKENIZER_EXPECTED: a
JSON file {"texts": [...], "ids": [[...], ...]} written by an independent
encoder (the Hugging Face `tokenizers` Node binding or OpenAI's GPT-2
encoder ported to JS: see tests/engine/tok_expected.js). Every text must
encode to exactly the expected ids (no special tokens added) and decode back
to itself."""

import json
import os
import subprocess

import pytest

TOK_DIR = os.environ.get("PB_TOKENIZER_DIR", "")
EXPECTED = os.environ.get("PB_TOKENIZER_EXPECTED", "")

pytestmark = pytest.mark.skipif(not (TOK_DIR and EXPECTED),
                                reason="PB_TOKENIZER_DIR and PB_TOKENIZER_EXPECTED not set")


def test_ids_match_the_reference_encoder():
    want = json.load(open(EXPECTED, encoding="utf-8"))
    texts, ids = want["texts"], want["ids"]
    assert texts and len(texts) == len(ids)
    tool = os.path.join(os.environ.get("PB_BUILDDIR", "."), "tests", "engine", "pe_tokenize")
    out = subprocess.run([tool, TOK_DIR], input=json.dumps(texts).encode(),
                         capture_output=True, check=True, timeout=120)
    got = json.loads(out.stdout)
    bad = [(t, w, g) for t, w, g in zip(texts, ids, got["ids"]) if w != g]
    rate = 1 - len(bad) / len(texts)
    detail = "\n".join(f"{t!r}\n  want {w}\n  got  {g}" for t, w, g in bad[:5])
    assert not bad, f"exact-match rate {rate:.3f} ({len(bad)} of {len(texts)} differ)\n{detail}"
    not_back = [t for t, ok in zip(texts, got["roundtrip"]) if not ok]
    assert not not_back, f"decode(encode(text)) != text for {not_back[:5]!r}"
