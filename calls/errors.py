"""Exceptions the parts of a call raise to each other."""


class ModelGone(Exception):
    """The Realtime socket closed under us; the call is already ending."""
