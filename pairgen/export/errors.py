"""Errors the export reports to the user as one line (the CLI prints them without a traceback)."""

from __future__ import annotations


class ExportError(Exception):
    """Something the user can fix: invalid shards, a bad repo id, no token, an occupied output folder."""


class HubError(ExportError):
    """The Hub could not be reached or refused the request; the message names the endpoint and why."""
