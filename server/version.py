"""mailgate's version, written once in pyproject.toml and read here from the installed metadata."""

from importlib.metadata import version

VERSION = version("mailgate")
