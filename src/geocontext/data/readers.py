"""Read the competition's files from a DATA folder: labels, test ids, photo metadata, image paths.

Every reader checks the file's shape and raises `DataError` naming the file, line and id at fault.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..competition import ID
from ..errors import DataError
from . import ids as ids_rule
from .ids import Respelt
from .metadata import parse_metadata

_TAG_COLUMN = re.compile(r"^tag\d+$")


@dataclass(frozen=True)
class Labels:
    """Tag labels: `y[i, j]` is 1 when photo `ids[i]` carries tag `columns[j]`."""

    ids: np.ndarray  # int64 (N,)
    y: np.ndarray  # uint8 (N, T)
    columns: tuple[str, ...]
    respelt: tuple[Respelt, ...] = ()  # per file read, its ids written non-canonically (data.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, mask_or_index) -> "Labels":
        return Labels(self.ids[mask_or_index], self.y[mask_or_index], self.columns, self.respelt)


@dataclass(frozen=True)
class Metadata:
    """Title and grid reference per photo, aligned with `ids`; '' where unknown."""

    ids: np.ndarray
    title: np.ndarray  # object array of str
    grid_reference: np.ndarray  # object array of str
    malformed_lines: tuple[str, ...]  # "file:line" of each line the CSV parser had to skip
    bad_ids: int  # parsed lines whose gridimage_id is not a number
    not_found: int  # ids asked for that no metadata row describes
    warnings: tuple[str, ...] = ()
    undecodable_lines: tuple[str, ...] = ()  # "file:line (id N)" of lines with bytes not in the file's encoding
    found: np.ndarray | None = None  # bool per id: a metadata row describes it
    unmatched: int = 0  # metadata rows (distinct ids) for none of the ids asked for


def find(data_dir: str | Path, *names: str) -> Path | None:
    """The first of `names` that exists in `data_dir`, or None. Both X.csv and X.csv.zip there is
    ambiguous (which is current?) and refused rather than guessed."""
    present = [Path(data_dir) / n for n in names if (Path(data_dir) / n).exists()]
    for path in present:
        twin = path.with_name(path.name + ".zip")
        if twin in present:
            raise DataError(f"{Path(data_dir)}: both {path.name} and {twin.name} are there; keep one (the kit will"
                            " not guess which is current)")
    return present[0] if present else None


def require(data_dir: str | Path, *names: str) -> Path:
    path = find(data_dir, *names)
    if path is None:
        raise DataError(f"{Path(data_dir)}: none of {', '.join(names)} found (DATA folder in the competition's layout)")
    return path


def open_csv(path: str | Path):
    """A binary file handle on a .csv, or on the one CSV inside a .zip (macOS '__MACOSX/' entries ignored)."""
    path = Path(path)
    if path.suffix != ".zip":
        return open(path, "rb")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable zip file ({exc})") from exc
    members = [m for m in archive.namelist() if m.endswith(".csv") and not m.startswith("__MACOSX/")]
    if len(members) != 1:
        raise DataError(f"{path}: expected exactly one .csv inside the zip, found {members or 'none'}")
    return archive.open(members[0])


def read_table(path: str | Path, **kwargs) -> pd.DataFrame:
    with open_csv(path) as handle:
        try:
            return pd.read_csv(handle, **kwargs)
        except (pd.errors.ParserError, UnicodeDecodeError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{path}: cannot parse as CSV ({exc})") from exc
        except pd.errors.EmptyDataError as exc:
            raise DataError(f"{path}: the file is empty") from exc


def parse_ids(values: pd.Series, path: Path) -> tuple[np.ndarray, Respelt | None]:
    """The gridimage ids of a column read as text (data.ids: any spelling of a whole number >= 0, the
    non-canonical ones counted); a cell that is no id stops, naming its line (header is line 1)."""
    column = ids_rule.parse(values, str(path))
    bad = column.first_bad()
    if bad is not None:
        raise DataError(f"{path}, line {bad[0]}: gridimage_id {bad[1]!r} is not an id (expected {ids_rule.EXPECTED})")
    return column.ids, column.respelt


def check_unique(ids: np.ndarray, path: Path) -> None:
    uniq, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if len(uniq) != len(ids):
        dup = uniq[counts > 1]
        lines = np.flatnonzero(ids == dup[0]) + 2
        raise DataError(
            f"{path}: gridimage_id {dup[0]} appears {counts[counts > 1][0]} times (lines {', '.join(map(str, lines))});"
            f" {len(dup)} duplicated id(s) in all"
        )


def read_labels(path: str | Path, columns: tuple[str, ...] | None = None) -> Labels:
    """A labels CSV (gridimage_id + tagNNN 0/1 columns). With `columns`, they must all be present and
    are returned in that order (other text columns such as train-extra's `tags` are ignored)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    df = read_table(path, dtype={ID: str})  # ids as written (data.ids)
    if ID not in df.columns:
        raise DataError(f"{path}: missing column {ID!r} (found {list(df.columns)[:5]}...)")
    found = tuple(c for c in df.columns if _TAG_COLUMN.match(str(c)))
    if columns is None:
        if not found:
            raise DataError(f"{path}: no tag columns (expected columns named tagNNN after {ID!r})")
        columns = found
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing tag column(s) {missing[:5]} (expected the {len(columns)} columns of train.csv)")
    ids, respelt = parse_ids(df[ID], path)
    check_unique(ids, path)
    values = df.loc[:, list(columns)]
    nan = values.isna().to_numpy()
    if nan.any():
        row, col = map(int, np.argwhere(nan)[0])
        raise DataError(f"{path}, line {row + 2}: gridimage_id {ids[row]} has no value for {columns[col]} (NaN label)")
    raw = values.to_numpy()
    bad = (raw != 0) & (raw != 1)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise DataError(f"{path}, line {row + 2}: gridimage_id {ids[row]} has {columns[col]}={raw[row, col]}; labels must be 0 or 1")
    return Labels(ids, raw.astype(np.uint8), tuple(columns), (respelt,) if respelt else ())


def tag_contract(data_dir: str | Path) -> tuple[str, ...] | None:
    """The tag columns tags-top.csv lists (its `col`), or None when DATA has no tags-top.csv."""
    path = find(data_dir, "tags-top.csv")
    if path is None:
        return None
    table = read_table(path, skip_blank_lines=True)
    if "col" not in table.columns:
        raise DataError(f"{path}: no 'col' column (expected tag_id,prefix,tag,col,grouping,description)")
    return tuple(table["col"].astype(str).str.strip())


def data_columns(data_dir: str | Path) -> tuple[str, ...] | None:
    """DATA's tag columns: tags-top.csv's when present, else train.csv's header's; None with neither."""
    contract = tag_contract(data_dir)
    if contract is not None:
        return contract
    path = find(data_dir, "train.csv", "train.csv.zip")
    if path is None:
        return None
    return tuple(c for c in read_table(path, nrows=0).columns if _TAG_COLUMN.match(str(c)))


def published_order(columns) -> tuple[str, ...]:
    """`columns` in the published order (the real train.csv's: competition.COLUMNS), others after in theirs."""
    from ..competition import COLUMNS

    rank = {c: i for i, c in enumerate(COLUMNS)}
    return tuple(sorted(columns, key=lambda c: rank.get(c, len(COLUMNS))))


def check_columns(found, contract, path) -> None:
    """`found` must be exactly the columns of `contract` (any order)."""
    missing = [c for c in contract if c not in found]
    extra = [c for c in found if c not in contract]
    if missing or extra:
        raise DataError(f"{path}: tag columns differ from the {len(contract)} of tags-top.csv (missing"
                        f" {missing[:5]}, unexpected {extra[:5]}); every run and submission needs exactly those")


def read_train_labels(data_dir: str | Path) -> Labels:
    """train.csv (or train.csv.zip), plus train-extra.csv when present, in the published column order.

    With tags-top.csv in DATA its 49 columns are the contract: train.csv must have exactly those."""
    path = require(data_dir, "train.csv", "train.csv.zip")
    main = read_labels(path)
    if not len(main):
        raise DataError(f"{path}: no photos, only the header line; a run needs labelled photos (the competition's"
                        " train.csv has one row per photo: gridimage_id and its 0/1 tag columns)")
    contract = tag_contract(data_dir)
    if contract is not None:
        check_columns(main.columns, contract, path)
    order = published_order(main.columns)
    if order != main.columns:
        index = [main.columns.index(c) for c in order]
        main = Labels(main.ids, np.ascontiguousarray(main.y[:, index]), order, main.respelt)
    extra_path = find(data_dir, "train-extra.csv", "train-extra.csv.zip")
    if extra_path is None:
        return main
    extra = read_labels(extra_path, columns=main.columns)
    both = np.intersect1d(main.ids, extra.ids)
    if len(both):
        raise DataError(f"{extra_path}: gridimage_id {both[0]} is also in train.csv ({len(both)} shared id(s))")
    return Labels(np.concatenate([main.ids, extra.ids]), np.concatenate([main.y, extra.y]), main.columns,
                  main.respelt + extra.respelt)


def read_ids(path: str | Path, respelt: list | None = None) -> np.ndarray:
    """The id column of `path`; its non-canonical spellings (data.ids) go into `respelt` when given."""
    path = Path(path)
    df = read_table(path, usecols=lambda c: c == ID, dtype={ID: str})
    if ID not in df.columns:
        raise DataError(f"{path}: missing column {ID!r}")
    ids, odd = parse_ids(df[ID], path)
    check_unique(ids, path)
    if odd is not None and respelt is not None:
        respelt.append(odd)
    return ids


def read_test_ids(data_dir: str | Path, respelt: list | None = None) -> np.ndarray:
    path = require(data_dir, "test.csv", "test.csv.zip")
    ids = read_ids(path, respelt)
    if not len(ids):
        raise DataError(f"{path}: no photos, only the header line; a submission needs the test photos' ids")
    return ids


# metadata-extra.csv comes from a Windows export: cp1252, where latin-1 would turn its en dashes and curly
# quotes (bytes 0x80-0x9f) into control characters.
METADATA_ENCODINGS = {"metadata": "utf-8", "metadata-extra": "cp1252"}


def _metadata_sources(data_dir) -> list[tuple[Path, str]]:
    sources = [(find(data_dir, f"{stem}.csv", f"{stem}.csv.zip"), encoding) for stem, encoding in METADATA_ENCODINGS.items()]
    return [(path, encoding) for path, encoding in sources if path is not None]


def undecodable_warning(lines) -> str:
    """The warning for metadata lines holding bytes that are not text in their file's encoding."""
    encodings = ", ".join(f"{encoding} in {stem}.csv" for stem, encoding in METADATA_ENCODINGS.items())
    return (f"{len(lines)} metadata line(s) hold bytes that are not text in their file's encoding ({encodings}),"
            f" read as U+FFFD: {', '.join(lines[:5])}{' ...' if len(lines) > 5 else ''}")


def _read_metadata_file(path: Path, encoding: str) -> tuple[pd.DataFrame, list[str], list[str], list[str], Respelt | None]:
    with open_csv(path) as handle:
        raw = handle.read()
    return parse_metadata(raw, encoding, path.name)


def iter_metadata(data_dir: str | Path, chunk_bytes: int = 64 << 20):
    """metadata.csv[.zip] then metadata-extra.csv, about `chunk_bytes` of whole lines at a time, parsed
    as `read_metadata` parses them (line by line, malformed lines named by their line in the file):
    yields (frame of gridimage_id, title, grid_reference; malformed lines; lines with a non-integer id;
    lines with bytes that are not text in the file's encoding; the ids written non-canonically).
    Memory stays flat whatever the file's size."""
    for path, encoding in _metadata_sources(data_dir):
        with open_csv(path) as handle:
            header, lines_before, rest = None, 0, b""
            while True:
                block = handle.read(chunk_bytes)
                data = rest + block
                cut = data.rfind(b"\n") + 1 if block else len(data)
                if block and cut == 0:  # one line longer than a chunk: read on
                    rest = data
                    continue
                data, rest = data[:cut], data[cut:]
                if data.strip():
                    if header is None:
                        body = data.removeprefix(b"\xef\xbb\xbf")
                        start = len(body) - len(body.lstrip())
                        header = body[start:body.index(b"\n", start) + 1] if b"\n" in body[start:] else body
                        yield parse_metadata(data, encoding, path.name)
                    else:  # the header again, so the chunk parses alone; line numbers stay the file's
                        yield parse_metadata(header + data, encoding, path.name, line_offset=lines_before - 1)
                lines_before += data.count(b"\n")
                if not block:
                    break


def read_metadata(data_dir: str | Path, ids: np.ndarray) -> Metadata:
    """Titles and grid references for `ids` from metadata.csv[.zip] (+ cp1252 metadata-extra.csv).

    Malformed lines are skipped and counted by line number and id, never fatal and never shifting data
    between photos (see data.metadata); lines with undecodable bytes are counted the same way."""
    frames, malformed, bad_ids, undecodable, respelt = [], [], [], [], []
    for path, encoding in _metadata_sources(data_dir):
        df, skipped, bad, text, odd = _read_metadata_file(path, encoding)
        frames.append(df)
        malformed += skipped
        bad_ids += bad
        undecodable += text
        respelt += [odd] if odd else []
    ids = np.asarray(ids, dtype=np.int64)
    if not frames:
        empty = np.full(len(ids), "", dtype=object)
        warning = (f"{Path(data_dir)}: no metadata.csv: every title and location will be unknown",)
        return Metadata(ids, empty, empty.copy(), (), 0, len(ids), warning, found=np.zeros(len(ids), dtype=bool))
    table = pd.concat(frames, ignore_index=True).drop_duplicates(ID, keep="first").set_index(ID)
    pos = table.index.get_indexer(ids)
    found = pos >= 0
    title = np.full(len(ids), "", dtype=object)
    grid = np.full(len(ids), "", dtype=object)
    title[found] = table["title"].to_numpy(dtype=object)[pos[found]]
    grid[found] = table["grid_reference"].to_numpy(dtype=object)[pos[found]]
    warnings = tuple(f"{b}: gridimage_id is not a number" for b in bad_ids[:10])
    warnings += (undecodable_warning(undecodable),) if undecodable else ()
    warnings += tuple(map(str, respelt))
    return Metadata(ids, title, grid, tuple(malformed), len(bad_ids), int((~found).sum()), warnings,
                    tuple(undecodable), found, len(table) - len(np.unique(pos[found])))


def read_tag_names(data_dir: str | Path) -> dict[str, str]:
    """Column -> readable tag name from tags-top.csv (blank lines skipped); the kit's own table if absent."""
    from ..competition import BY_COLUMN

    path = find(data_dir, "tags-top.csv")
    names = {col: tag.name for col, tag in BY_COLUMN.items()}
    if path is not None:
        table = read_table(path, skip_blank_lines=True)
        if not {"col", "tag"} <= set(table.columns):
            raise DataError(f"{path}: expected columns tag_id,prefix,tag,col,grouping,description")
        names.update(zip(table["col"].astype(str), table["tag"].astype(str)))
    return names


def split_ids(data_dir: str | Path, split: str, respelt: list | None = None) -> tuple[np.ndarray, str]:
    """The split's gridimage ids in the DATA lists' order, and which files listed them (non-canonical
    spellings into `respelt`, as read_ids)."""
    if split == "test":
        path = require(data_dir, "test.csv", "test.csv.zip")
        return read_ids(path, respelt), path.name
    main = require(data_dir, "train.csv", "train.csv.zip")
    extra = find(data_dir, "train-extra.csv", "train-extra.csv.zip")
    ids = read_ids(main, respelt)
    if extra is None:
        return ids, main.name
    both = np.concatenate([ids, read_ids(extra, respelt)])
    check_unique(both, extra)
    return both, f"{main.name} + {extra.name}"
