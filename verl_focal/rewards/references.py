"""Reading a reference (``reward_model.ground_truth``) that is a JSON object, or that object's text."""

from __future__ import annotations

import json
from typing import Any


class ReferenceError(ValueError):
    """A ground truth a scorer cannot use; the message names the offending field."""


def json_object(value: Any, what: str) -> dict[str, Any]:
    """``value`` as a dict: itself, or parsed from its JSON text; :class:`ReferenceError` naming ``what`` else."""
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as error:
            raise ReferenceError(f"{what} is not JSON ({error})") from error
    if not isinstance(value, dict):
        raise ReferenceError(f"{what} is a {type(value).__name__}, not a JSON object")
    return value
