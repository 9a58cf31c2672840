"""Which verl this package runs on: the supported range, the parts that need verl 0.9, one check for both.

The core (estimators, losses, rewards, evaluation, theory) is tested on ``OLDEST_TESTED`` and
``NEWEST_TESTED`` (``scripts/test_oldest_verl.sh``, ``scripts/test.sh``). The parts in ``NEEDS`` use verl
interfaces that older releases lack and refuse to start there, through ``require``. Imports no verl until
asked for the installed version.
"""

from __future__ import annotations

#: What ``pyproject.toml`` accepts (a test keeps the two equal).
SUPPORTED = ">=0.7.1,<0.10"
OLDEST_TESTED = "0.7.1"
NEWEST_TESTED = "0.9.1"
_UPPER = (0, 10)

#: The first verl release that loads ``verl.plugins`` entry points at ``import verl``.
ENTRY_POINTS_SINCE = "0.9.0"

#: Parts that need a newer verl than the core: key -> (what the user asked for, oldest verl it runs on).
NEEDS: dict[str, tuple[str, str]] = {
    "trainer_mode": ("trainer.v1.trainer_mode=sync_pass_at_k (verl's v1 trainer)", "0.9.0"),
    "recipes": ("the recipes (recipes/: v1 trainer keys)", "0.9.0"),
    "cpu": ("the CPU backend (verl_focal.cpu, private verl 0.9 interfaces)", "0.9.0"),
}


class UnsupportedVerlVersion(RuntimeError):
    """The installed verl is outside what a part of verl-focal runs on."""


def installed() -> str:
    """The installed verl's version, as ``verl.__version__`` reports it."""
    import verl

    return str(getattr(verl, "__version__", "unknown"))


def _release(version: str) -> tuple[int, ...]:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version).release
    except InvalidVersion:
        return ()


def has_entry_points(version: str | None = None) -> bool:
    """Whether ``import verl`` loads the ``verl.plugins`` entry points on this verl."""
    return _release(version or installed()) >= _release(ENTRY_POINTS_SINCE)


def supports(part: str, version: str | None = None) -> bool:
    """Whether ``part`` (a key of ``NEEDS``, or ``"core"``) runs on ``version`` (default: the installed verl)."""
    minimum = OLDEST_TESTED if part == "core" else NEEDS[part][1]
    release = _release(version or installed())
    return bool(release) and _release(minimum) <= release < _UPPER


def refusal(part: str, version: str) -> str | None:
    """Why ``part`` cannot run on verl ``version`` (naming both versions), or None when it can."""
    if supports(part, version):
        return None
    what, minimum = ("verl-focal", OLDEST_TESTED) if part == "core" else NEEDS[part]
    return (f"{what} needs verl>={minimum},<0.10; verl {version} is installed "
            f"(pip install 'verl[verl-core]>={minimum},<0.10')")


def require(part: str) -> str:
    """Return the installed verl version, or raise ``UnsupportedVerlVersion`` with ``refusal``'s reason."""
    version = installed()
    reason = refusal(part, version)
    if reason:
        raise UnsupportedVerlVersion(reason)
    return version


def main(argv: list[str] | None = None) -> int:
    """``python -m verl_focal.versions PART``: exit 1 with the one-line reason when PART cannot run here."""
    import sys

    parts = list(sys.argv[1:] if argv is None else argv) or ["core"]
    try:
        for part in parts:
            require(part)
    except UnsupportedVerlVersion as exc:
        print(f"verl-focal: {exc}", file=sys.stderr)
        return 1
    except KeyError as exc:
        print(f"verl-focal: unknown part {exc}; choose from core, {', '.join(NEEDS)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
