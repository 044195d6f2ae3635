"""An encoder's identity: what fixes the numbers of the blocks it makes, and the one comparison of two.

An identity is a dict (`identity()` of each encoder, embedding.encoders): model, weights ("tag:NAME",
"file:SHA256 of the file", "random:SEED"), weights_sha256 (of the weights' tensors, so a tag and a file
holding the same weights agree), quick_gelu, dim, image_size, preprocess, context_length, precision, ...
meta.json keeps it per block, a run keeps it per variant (variant.json "encoders"), and wherever
features meet they are compared: the chunks of one split, train against test, a run's heads against the
features `predict` or the archive labeller give them. A head reads its inputs column by column, so
features of other weights give it noise and a score of about 0, never an error of their own.

Only what both sides record is compared: folders made before a field was recorded still read (the same
model and weights name imply the rest); a side with no identity at all, and a tag against a file without
the tensors' digest, are compared as far as they can be, with a warning. Precision differs by rounding only (bf16 on a CPU, fp16 on a
GPU agree to cosine > 0.99): told, not refused, except inside one split's chunks (chunks.mismatch).
"""
from __future__ import annotations

from ..errors import DataError

SOFT = ("precision",)  # rounding, not other numbers: a warning between splits and runs


def _flat(identity: dict | None, prefix: str = "") -> dict:
    """Nested identities (a job's image and title parts) as dotted keys; "blocks" lists are not identity."""
    out = {}
    for key, value in (identity or {}).items():
        if isinstance(value, dict) and key != "preprocess":
            out.update(_flat(value, f"{prefix}{key}."))
        elif key != "blocks":
            out[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
    return out


def _source(weights) -> str:
    return str(weights).split(":", 1)[0]


def compare(a: dict | None, b: dict | None, lenient: bool = True) -> tuple[list[tuple[str, object, object]], list[str]]:
    """(fields both record with other values, fields not compared): the weights are compared by their
    tensors' digest where both have one, else by name; `lenient`, a tag and a file without digests
    cannot be told apart (fields not compared), while a tag and another tag, or two files, can."""
    fa, fb = _flat(a), _flat(b)
    unsure = []
    for key in [k for k in fa if k.endswith("weights") and k in fb]:
        prefix = key[:-len("weights")]
        if f"{prefix}weights_sha256" in fa and f"{prefix}weights_sha256" in fb:
            fa.pop(key), fb.pop(key)  # the digests decide
        elif lenient and fa[key] != fb[key] and "random" not in (_source(fa[key]), _source(fb[key])) \
                and _source(fa[key]) != _source(fb[key]):
            unsure.append(key)
            fa.pop(key), fb.pop(key)
    differ = [(k, fa[k], fb[k]) for k in fa if k in fb and _norm(fa[k]) != _norm(fb[k])]
    return differ, unsure


def _norm(value):
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return tuple(_norm(v) for v in value) if isinstance(value, (list, tuple)) else value


def shown(value) -> str:
    text = value if isinstance(value, str) else repr(value)
    head, sep, tail = text.rpartition(":")
    if len(tail) == 64 and all(c in "0123456789abcdef" for c in tail):  # a sha256: its start names it
        return f"{head}{sep}{tail[:12]}"
    return text


def describe(differ: list[tuple[str, object, object]]) -> str:
    return ", ".join(f"{key} {shown(a)} vs {shown(b)}" for key, a, b in differ)


def check_same(a: dict | None, b: dict | None, side_a: str, side_b: str, advice: str) -> list[str]:
    """Refuse (DataError naming both sides) identities that differ in what fixes the numbers; return
    warnings for rounding differences and for what could not be compared."""
    if not a or not b:
        if not a and not b:
            return []
        return [f"{side_b if a else side_a} records no encoder identity (made before identities were recorded,"
                " or not by `embed`): its encoder is not compared"]
    differ, unsure = compare(a, b)
    hard = [d for d in differ if d[0].rsplit(".", 1)[-1] not in SOFT]
    if hard:
        raise DataError(f"{side_a} and {side_b} come from different encoders ({describe(hard)}); {advice}")
    warnings = []
    if differ:
        warnings.append(f"{side_a} and {side_b} were embedded in other precisions ({describe(differ)}): their"
                        " numbers agree to rounding, so they are used together")
    if unsure:
        fa, fb = _flat(a), _flat(b)
        warnings.append(f"{side_a} and {side_b}: cannot tell whether {describe([(k, fa[k], fb[k]) for k in unsure])}"
                        " are the same weights (made before the weights' digest was recorded): compared on the rest")
    return warnings
