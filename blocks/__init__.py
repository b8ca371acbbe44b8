"""Prefect Blocks of v6flow: server credentials and collaboration defaults."""

from blocks.collaboration import V6flowCollaboration
from blocks.credentials import V6flowServerCredentials

__all__ = ["V6flowCollaboration", "V6flowServerCredentials"]
