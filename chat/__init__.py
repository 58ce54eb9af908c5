"""Shared, pure IRC building blocks: no I/O anywhere in this package."""
