"""Synthetic datasets by activation maximisation through a generator, and their privacy audits (issue 4)."""
