"""Errors of the login mechanisms."""

from __future__ import annotations


class LoginError(Exception):
    """A refused login; the message is shown on the login page, so it never says which part was wrong
    (unknown user and wrong password read the same) and never contains internals."""
