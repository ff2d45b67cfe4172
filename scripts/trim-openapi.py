#!/usr/bin/env python3
"""Extracts the schemas the tests validate against from OpenAI's OpenAPI file.

Run once by hand (needs PyYAML):
  python3 scripts/trim-openapi.py ../shared/reference/openai-openapi.yaml          # chat
  python3 scripts/trim-openapi.py ../shared/reference/openai-openapi.yaml batch    # batch
It writes test/fixtures/openapi-<set>.json: the named schemas and every schema they reference,
with $ref rewritten to point into the file's own "$defs".
"""
import json
import sys
import yaml

SETS = {
    "chat": [
        "CreateChatCompletionRequest",
        "ChatCompletionRequestMessageContentPartImage",
        "CreateChatCompletionStreamResponse",
        "CreateChatCompletionResponse",
        "ErrorResponse",
    ],
    "batch": [
        "Batch",
        "OpenAIFile",
        "CreateBatchRequest",
        "ListBatchesResponse",
        "CreateFileRequest",
        "ErrorResponse",
    ],
}
NAME = sys.argv[2] if len(sys.argv) > 2 else "chat"
ROOTS = SETS[NAME]

with open(sys.argv[1]) as f:
    spec = yaml.safe_load(f)
schemas = spec["components"]["schemas"]
keep = {}

def visit(node):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            node["$ref"] = "#/$defs/" + name
            if name not in keep:
                keep[name] = None
                keep[name] = visit(json.loads(json.dumps(schemas[name])))
        for value in node.values():
            visit(value)
    elif isinstance(node, list):
        for value in node:
            visit(value)
    return node

for root in ROOTS:
    visit({"$ref": "#/components/schemas/" + root})

out = {
    "$comment": "Trimmed from openai/openai-openapi openapi.yaml at f85dbe22 (2026-08-21) by scripts/trim-openapi.py",
    "$defs": dict(sorted(keep.items())),
}
with open(f"test/fixtures/openapi-{NAME}.json", "w") as f:
    json.dump(out, f, indent=1, sort_keys=False)
    f.write("\n")
print(len(keep), "schemas")
