"""Read a dataset as published: parquet, JSON, JSONL, CSV, or a directory (Hugging Face ``save_to_disk`` output,
or a folder of such files, as in a Hub snapshot)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from verl_focal.user_files import read_text, text_lines

FILE_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv")
# split names recognised in file names; a directory whose files name two of them is not read without --split
SPLIT_NAMES = frozenset({"train", "test", "validation", "valid", "val", "dev"})


class DataError(ValueError):
    """Input that cannot become a dataset; the message names the file (and row or column)."""


def read_records(path: str | Path, split: str | None = None) -> list[tuple[str, list[dict[str, Any]]]]:
    """The rows under ``path``, as ``(source, rows)`` per file (or dataset split) in path order.

    ``split`` picks a split of a Hugging Face ``DatasetDict`` directory, or the files of a directory whose relative
    path has the split as a part (``test.jsonl``, ``data/test-00000-of-00001.parquet``, ``test/x.json``).
    Without it a ``DatasetDict``'s only split is used, else ``test``, then ``train``; a directory whose file names
    name several splits is refused, since reading them all would mix the splits.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            return [_read_hf_saved(path, split)]
        files = sorted(p for p in path.rglob("*") if p.suffix in FILE_SUFFIXES and p.is_file() and not _hidden(p, path))
        if not files:
            raise DataError(f"{path}: directory holds no {', '.join(FILE_SUFFIXES)} files and is not a saved dataset")
        return [(str(file), read_file(file)) for file in files_of_split(files, path, split)]
    if split is not None and split.lower() not in _name_parts(path, path.parent):
        raise DataError(
            f"--split {split}: {path} is one file and its name does not name that split; --split picks the files "
            "of a directory or a split of a saved dataset (drop it for a single file)"
        )
    return [(str(path), read_file(path))]


def _hidden(file: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in file.relative_to(root).parts)


def _name_parts(file: Path, root: Path) -> set[str]:
    """Lower-cased parts of the path below ``root``, split at ``/ _ - .`` and spaces, without the suffix."""
    return set(re.split(r"[/_.\-\s]+", file.relative_to(root).with_suffix("").as_posix().lower()))


def _listing(files: list[Path], root: Path, limit: int = 12) -> str:
    names = [f.relative_to(root).as_posix() for f in files]
    more = f", ... ({len(names)} files)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def files_of_split(files: list[Path], root: Path, split: str | None) -> list[Path]:
    """The files of ``split`` (see :func:`read_records`); an error lists the files found when none matches."""
    if split is not None:
        chosen = [f for f in files if split.lower() in _name_parts(f, root)]
        if not chosen:
            raise DataError(
                f"{root}: no file for --split {split} (a file is chosen when a folder or a part of its name is "
                f"{split!r}); files found: {_listing(files, root)}"
            )
        return chosen
    by_split: dict[frozenset, list[Path]] = {}
    for file in files:
        named = frozenset(_name_parts(file, root) & SPLIT_NAMES)
        if named:
            by_split.setdefault(named, []).append(file)
    if len(by_split) > 1:
        groups = "; ".join(
            f"{'/'.join(sorted(names))}: {_listing(group, root, 3)}"
            for names, group in sorted(by_split.items(), key=str)
        )
        raise DataError(f"{root}: holds files of several splits ({groups}); choose one with --split")
    return files


def read_file(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except Exception as error:
            raise DataError(f"{path}: not a readable parquet file ({error})") from error
    if suffix == ".jsonl":
        return _jsonl_rows(path)
    if suffix == ".json":
        try:
            data = json.loads(read_text(path))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from error
        return _json_rows(data, path)
    if suffix == ".csv":
        return _csv_rows(path)
    raise DataError(f"{path}: unsupported file type {suffix or '(none)'}; expected one of {', '.join(FILE_SUFFIXES)}")


def _jsonl_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line_number, line in text_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{line_number}: invalid JSON ({error.msg})") from error
        if not isinstance(row, dict):
            raise DataError(f"{path}:{line_number}: expected a JSON object per line, got {type(row).__name__}")
        rows.append(row)
    return rows


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    rows = []
    try:
        for number, row in enumerate(reader):
            if None in row:  # DictReader files surplus fields under the key None
                raise DataError(
                    f"{path} row {number} (line {reader.line_num}): more fields than the header has columns"
                )
            rows.append(row)
    except csv.Error as error:
        raise DataError(f"{path}:{reader.line_num}: not readable as CSV ({error})") from error
    return rows


def _json_rows(data: Any, path: Path) -> list[dict[str, Any]]:
    """A list of records, ``{"data": [...]}``-style wrappers, or pandas' column-oriented dict of lists."""
    if isinstance(data, list):
        if not all(isinstance(row, dict) for row in data):
            raise DataError(f"{path}: expected a list of JSON objects")
        return data
    if isinstance(data, dict):
        for key in ("data", "rows", "train", "test"):
            if isinstance(data.get(key), list):
                return _json_rows(data[key], path)
        if data and all(isinstance(v, list) for v in data.values()):
            lengths = {len(v) for v in data.values()}
            if len(lengths) != 1:
                raise DataError(f"{path}: column lists have different lengths {sorted(lengths)}")
            return [dict(zip(data, values)) for values in zip(*data.values())]
        if data and all(isinstance(v, dict) for v in data.values()):  # pandas orient="columns" with index keys
            columns = list(data)
            index = list(data[columns[0]])
            return [{c: data[c].get(i) for c in columns} for i in index]
    raise DataError(f"{path}: JSON is neither a list of records nor a dict of columns")


def _read_hf_saved(path: Path, split: str | None) -> tuple[str, list[dict[str, Any]]]:
    from datasets import Dataset, DatasetDict, load_from_disk

    try:
        loaded = load_from_disk(str(path))
    except Exception as error:
        raise DataError(f"{path}: not a readable Hugging Face datasets directory ({error})") from error
    if isinstance(loaded, DatasetDict):
        names = list(loaded)
        if split is None:
            split = names[0] if len(names) == 1 else next((s for s in ("test", "train") if s in names), None)
        if split not in loaded:
            raise DataError(f"{path}: no split {split!r}; splits are {names} (choose one with --split)")
        return f"{path}[{split}]", loaded[split].to_list()
    assert isinstance(loaded, Dataset)
    if split is not None and str(loaded.split) != split:
        held = f"of split {loaded.split}" if loaded.split is not None else "with no split name"
        raise DataError(f"--split {split}: {path} is a saved Dataset {held}, not a DatasetDict (drop --split)")
    return str(path), loaded.to_list()
