"""Operator commands: ``python -m scripts.<name>``."""
