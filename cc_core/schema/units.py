"""Metric units as upstream writes them: `{"base": "B/s", "prefix": "G"}`.

``base`` is always written (upstream's JSON schema requires it, even when empty); ``prefix`` only when set
(upstream's ``omitempty``), so the encoded form matches Go's byte for byte.
"""

import msgspec


class Unit(msgspec.Struct, omit_defaults=True):
    base: str
    prefix: str = ""


def no_unit() -> Unit:
    return Unit(base="")
