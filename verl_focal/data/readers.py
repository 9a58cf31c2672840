"""Read a dataset as published: parquet, JSON, JSONL, CSV, or a directory (Hugging Face ``save_to_disk`` output,
or a folder of such files, as in a Hub snapshot)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

FILE_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv")


class DataError(ValueError):
    """Input that cannot become a dataset; the message names the file (and row or column)."""


def read_records(path: str | Path, split: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """All rows under ``path`` as dicts, and the files (or dataset splits) they came from.

    ``split`` picks a split of a Hugging Face ``DatasetDict`` directory; without it a single split is used as is,
    else ``test``, then ``train``.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            return _read_hf_saved(path, split)
        files = sorted(p for p in path.rglob("*") if p.suffix in FILE_SUFFIXES and not _hidden(p, path))
        if split is not None:
            files = [p for p in files if split in p.relative_to(path).as_posix()] or files
        if not files:
            raise DataError(f"{path}: directory holds no {', '.join(FILE_SUFFIXES)} files and is not a saved dataset")
        rows: list[dict[str, Any]] = []
        for file in files:
            rows.extend(read_file(file))
        return rows, [str(f) for f in files]
    return read_file(path), [str(path)]


def _hidden(file: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in file.relative_to(root).parts)


def read_file(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except Exception as error:
            raise DataError(f"{path}: not a readable parquet file ({error})") from error
    if suffix == ".jsonl":
        rows = []
        with open(path, encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, 1):
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
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from error
        return _json_rows(data, path)
    if suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    raise DataError(f"{path}: unsupported file type {suffix or '(none)'}; expected one of {', '.join(FILE_SUFFIXES)}")


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


def _read_hf_saved(path: Path, split: str | None) -> tuple[list[dict[str, Any]], list[str]]:
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
        loaded = loaded[split]
        return loaded.to_list(), [f"{path}[{split}]"]
    assert isinstance(loaded, Dataset)
    return loaded.to_list(), [str(path)]
