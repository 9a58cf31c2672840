"""The files a command-line tool reads and writes for its user, handled so that a bad one costs nothing.

* Text input is decoded as UTF-8 with the file and line of a bad byte in the error (a BOM is dropped).
* Every output path is checked before any work: it must not be a directory or lie under a file, its folder must be
  writable (or creatable), and the tool's own rule says whether it would overwrite, or later be read as, an input.
* Outputs are written to a temporary file next to the target and moved over it, so a failure mid-write (a full
  disk, an exception in a plot) leaves the previous file whole.

``verl-focal eval``, ``data``, ``simulate`` and ``theory`` use these; each catches :class:`UserFileError`.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping

_BOM = "\ufeff"


class UserFileError(ValueError):
    """A path or file given by the user that cannot be used; the message names it (and the flag or line)."""


# ----------------------------------------------------------------------------- reading


def decode_utf8(data: bytes, path: str | Path, first_line: int = 1) -> str:
    """``data`` as text; a byte that is not UTF-8 is reported with ``path``, its line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UserFileError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}); "
            "re-encode the file as UTF-8"
        ) from None


def read_text(path: str | Path) -> str:
    """The whole file as UTF-8 text, without a leading BOM."""
    return decode_utf8(Path(path).read_bytes(), path).removeprefix(_BOM)


def text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 file, streamed; the line keeps its ``\\n`` (a last line may lack it)."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = decode_utf8(raw, path, number)
            yield number, (line.removeprefix(_BOM) if number == 1 else line)


# ----------------------------------------------------------------------------- checking outputs before work

# Given a resolved output path, a tool's rule returns why writing there would destroy or pollute an input, or None.
InputRule = Callable[[Path], "str | None"]


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def _probe_writable(directory: Path, what: str) -> None:
    """Create and remove a file in ``directory``: the one test that also holds for root and read-only mounts."""
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".verl-focal-probe-"):
            pass
    except OSError as exc:
        raise UserFileError(f"{what}: cannot write in {directory} ({exc.strerror or exc})") from None


def _check_folder(folder: Path, what: str) -> None:
    """``folder`` exists as a writable directory, or can be created (its nearest existing ancestor is one)."""
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise UserFileError(f"{what}: {existing} is a file, not a directory")
    _probe_writable(existing, what)


def check_output_file(path: str | Path, flag: str, *, suffixes: Mapping[str, str] | None = None,
                      is_input: InputRule | None = None) -> Path:
    """Refuse, before any work, an output file that cannot be written or that would overwrite an input.

    Args:
        path: the output file; its folder may be missing (it is created when the file is written).
        flag: the option that named it, for the message (``--csv``).
        suffixes: known formats, ``{".png": "Portable Network Graphics", ...}``; None accepts any name.
        is_input: the tool's rule for what it reads (see :data:`InputRule`).

    Raises:
        UserFileError: naming the flag and path and what to change.
    """
    p = Path(path)
    what = f"{flag} {path}"
    if p.is_dir() or not p.name:
        raise UserFileError(f"{what}: is a directory; give a file name")
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise UserFileError(f"{what}: unknown format {p.suffix or '(no suffix)'!r}; use one of {', '.join(suffixes)}")
    if is_input is not None and (reason := is_input(p.resolve())):
        raise UserFileError(f"{what}: {reason}; write the output somewhere else")
    if p.exists():
        if not p.is_file():
            raise UserFileError(f"{what}: exists and is not a regular file")
        if not os.access(p, os.W_OK):
            raise UserFileError(f"{what}: exists and is not writable")
    _check_folder(p.parent, what)
    return p


def check_output_dir(path: str | Path, flag: str, files: tuple[str, ...] = ()) -> Path:
    """Refuse, before any work, an output folder that is a file, lies under a file or cannot be written;
    ``files`` are the names the tool will write in it, none of which may be a directory."""
    p = Path(path)
    what = f"{flag} {path}"
    if p.exists() and not p.is_dir():
        raise UserFileError(f"{what}: is a file, not a directory")
    _check_folder(p, what)
    for name in files:
        if (p / name).is_dir():
            raise UserFileError(f"{what}: {p / name} is a directory, and {name} is written there")
    return p


def check_distinct(outputs: Mapping[str, Path]) -> None:
    """No two outputs (``{flag: path}``) are the same file: the second would overwrite the first."""
    seen: dict[Path, str] = {}
    for flag, path in outputs.items():
        resolved = Path(path).resolve()
        if resolved in seen:
            raise UserFileError(f"{flag} {path}: {seen[resolved]} writes the same file; give each output its own path")
        seen[resolved] = flag


# ----------------------------------------------------------------------------- writing


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same suffix, so writers that read the format from it still do);
    move it over ``path`` when the block succeeds, remove it when it fails. Missing folders are created."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix or None)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        mode = target.stat().st_mode & 0o7777 if target.exists() else _new_file_mode()
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
