"""Pydantic models of the custom resources, defaults, pure validation and condition helpers."""
