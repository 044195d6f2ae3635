"""`predict` in bounded memory: locations read from metadata chunk by chunk, the model inputs fused,
standardised and decoded chunk by chunk, the probabilities written as they come. At 8M photos (the
whole archive) only per-photo scalars (ids, locations, 49 tag bits) are held whole."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..competition import ID
from ..console import say
from ..data import grid
from ..data.readers import iter_metadata, undecodable_warning
from ..data.submission import check_probabilities
from ..decoding.bands import Banded
from ..decoding.select import Choice
from ..embedding.features import FeatureSet, align, release
from ..training.variant import Variant
from ..writing import writing
from .prepare import Inputs, inputs_summary, missing_rows


def streamed_inputs(data_dir, features: FeatureSet, ids: np.ndarray, source: str, split: str = "test",
                    accept_missing: bool = False) -> Inputs:
    """What `prepare.load_inputs` gives (the same locations and summary), without holding metadata.csv
    whole: each chunk keeps only the rows of `ids` (the first line of an id wins, as there)."""
    rows = align(features, ids, source)
    missing = missing_rows(split, features, rows, ids, accept_missing)
    index = pd.Index(ids)
    location = np.full((len(ids), 2), np.nan, dtype=np.float32)
    irish, found = np.zeros(len(ids), dtype=bool), np.zeros(len(ids), dtype=bool)
    counts = {"empty": 0, "malformed": 0}
    malformed_lines, malformed_refs, bad_ids, undecodable, sources, respelt = [], [], [], [], 0, {}
    for df, skipped, bad, text, odd in iter_metadata(data_dir):
        sources += 1
        if odd is not None:  # a file's chunks add up to one count per file
            respelt[odd.source] = respelt[odd.source].plus(odd) if odd.source in respelt else odd
        malformed_lines += skipped
        bad_ids += bad
        undecodable += text
        pos = index.get_indexer(df[ID].to_numpy())
        refs = df["grid_reference"].to_numpy(dtype=object)[pos >= 0]
        pos, first = np.unique(pos[pos >= 0], return_index=True)
        new = ~found[pos]
        pos, refs = pos[new], refs[first][new]
        found[pos] = True
        where = grid.locate(refs)
        location[pos], irish[pos] = grid.normalise(where.latlon), where.irish
        counts["empty"] += where.empty
        counts["malformed"] += where.malformed_count
        malformed_refs += [r for r in where.malformed if r not in malformed_refs][:10 - len(malformed_refs)]
    not_found = int((~found).sum())
    warnings = [f"{b}: gridimage_id is not a number" for b in bad_ids[:10]] if sources else \
        [f"{Path(data_dir)}: no metadata.csv: every title and location will be unknown"]
    warnings += [undecodable_warning(undecodable)] if undecodable else []
    warnings += list(map(str, respelt.values()))
    for warning in warnings:
        say(f"warning: {warning}")
    known = ~np.isnan(location[:, 0])
    locations = {"rows": len(ids), "known": int(known.sum()), "irish": int(irish.sum()),
                 "empty": counts["empty"] + not_found, "malformed": counts["malformed"],
                 "malformed_examples": malformed_refs}
    summary = inputs_summary(len(ids), missing, locations, malformed_lines, len(bad_ids), not_found, warnings,
                             undecodable)
    return Inputs(ids, features, rows, location, irish, summary)


def predict_chunks(variants: dict[str, Variant], choice: Choice | Banded, inputs: Inputs, probs_file=None,
                   chunk: int = 65_536, source: str = "predict") -> np.ndarray:
    """The final choice's 0/1 tags for every row of `inputs`, computed `chunk` rows at a time: inputs are
    fused, standardised and decoded per chunk and the probabilities streamed to `probs_file` (.npy).
    Non-finite probabilities stop it before anything is written (`source` names the output)."""
    n, tags, out = len(inputs.rows), None, None
    if probs_file is not None and not str(probs_file).endswith(".npy"):
        probs_file = f"{probs_file}.npy"  # as np.save names it
    part_file = None if probs_file is None else Path(f"{probs_file}.part")  # complete or absent, never half
    needed = n * len(variants[choice.members[0]].columns) * 4
    with writing(Path(probs_file or ".").parent, f"the probabilities {Path(probs_file or '').name}", needed):
        try:
            for start in range(0, max(n, 1), chunk):
                part = slice(start, start + chunk)
                fused: dict = {}  # variants sharing a feature spec fuse each chunk once
                probs = [variants[m].predict_proba(inputs.features, inputs.rows[part], inputs.location[part],
                                                   inputs.irish[part], fused, inputs.ids[part])
                         for m in choice.members]
                del fused
                if tags is None:
                    tags = np.empty((n, probs[0].shape[1]), dtype=np.uint8)
                    out = None if part_file is None else _npy_writer(part_file, (n, probs[0].shape[1]))
                bands = choice.bands(inputs.ids[part]) if isinstance(choice, Banded) else None  # gaps once a chunk
                combined = choice.combine(probs, inputs.ids[part], bands)
                check_probabilities(combined, inputs.ids[part], source)
                tags[part] = choice.decode(probs, inputs.ids[part], bands)
                if out is not None:
                    out.write(np.ascontiguousarray(combined, dtype="<f4").tobytes())
                release(inputs.features)
            if out is not None:
                out.close()  # flushes: a full disk may show only here
                part_file.replace(probs_file)
        except BaseException:
            if out is not None:
                out.close()
                part_file.unlink(missing_ok=True)
            raise
    return tags


def _npy_writer(path, shape: tuple[int, int]):
    """A .npy file of float32 `shape` whose rows are written in order after the header."""
    handle = open(path, "wb")
    np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return handle
