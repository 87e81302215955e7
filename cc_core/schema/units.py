"""Metric units as upstream writes them: `{"base": "B/s", "prefix": "G"}`."""

import msgspec


class Unit(msgspec.Struct, omit_defaults=True):
    base: str = ""
    prefix: str = ""
