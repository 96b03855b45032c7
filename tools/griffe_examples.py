"""Griffe extension for the API reference: a Google ``Example:`` section is an examples section.

Griffe reads ``Example:`` (singular) as an admonition, so its ``>>>`` lines would render as
markdown text; the project's docstrings use the singular (as flax and optax do).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^Example:[ \t]*$", re.M)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub("Examples:", obj.docstring.value)
