"""Kubernetes quantities (``200Gi``, ``500m``, ``1.5G``) and sizes in bytes, in one place. Pure.

Read as the API server reads them (``resource.Quantity``): a number, an optional
exponent, and a suffix, binary (``Ki`` ... ``Ei``) or decimal (``m``, ``k`` ... ``E``).
"""

from __future__ import annotations

import re

_QUANTITY = re.compile(r"\s*([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*")
SUFFIXES: dict[str, float] = {"": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
                              "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50,
                              "Ei": 2.0**60}
#: A storage size as the config takes it: a positive number with a unit (``200Gi``).
SIZE = re.compile(r"([0-9]+(\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)")


def parse_quantity(text: str | None) -> float | None:
    """A quantity as a number (bytes for sizes, cores for CPU); None when it cannot be read."""
    match = _QUANTITY.fullmatch(text or "")
    if not match or match.group(2) not in SUFFIXES:
        return None
    try:
        return float(match.group(1)) * SUFFIXES[match.group(2)]
    except ValueError:
        return None


def quantity_bytes(text: str | None) -> int | None:
    """Bytes in a size such as ``200Gi``; None when it cannot be read."""
    value = parse_quantity(text)
    return None if value is None else int(value)


def is_size(text: str) -> bool:
    """A positive size with a unit, the only form the config accepts (``200Gi``, ``1.5T``)."""
    match = SIZE.fullmatch(text)
    return bool(match) and float(match.group(1)) > 0  # type: ignore[union-attr]


def format_quantity(value: float, resource: str) -> str:
    """A number back as a readable quantity: cores as ``500m``/``2``, bytes as ``512Mi``/``2Gi``."""
    if resource == "cpu":
        return f"{value:g}" if value >= 1 and float(value).is_integer() else f"{round(value * 1000)}m"
    for suffix in ("Ti", "Gi", "Mi", "Ki"):
        if value >= SUFFIXES[suffix] and (value / SUFFIXES[suffix]).is_integer():
            return f"{int(value / SUFFIXES[suffix])}{suffix}"
    return f"{value:g}"


def human_bytes(value: int | None) -> str:
    """``du -h`` style: 0, 512K, 1.5M, 20G; ``-`` for None."""
    if value is None:
        return "-"
    if value < 1024:
        return str(value)
    size, units = value / 1024, "KMGTP"
    while size >= 1024 and len(units) > 1:
        size, units = size / 1024, units[1:]
    return f"{size:.1f}{units[0]}" if size < 10 else f"{size:.0f}{units[0]}"
