"""Templates as generation sees them: versions read from the store (core.templates) by one cached lookup.

`get_template(name, version)` answers with a `core.templates.Template` (name, title, texts,
personas / emotions / topics, custom variables, edge cases, turn range, model, max tokens);
None for `version` means the latest. `TEMPLATES` is the six built-ins as seeded (version 1).
A user template may use the placeholders its template declares, plus {turns}; literal braces
are written doubled ({{ and }}). The first suggestion of each variable is its default.
"""

from __future__ import annotations

from core.templates.builtin import BUILTINS
from core.templates.model import Template

__all__ = ["PLACEHOLDERS", "TEMPLATES", "Template", "get_template", "template_names"]

# the placeholders of the built-ins; a template may declare more (core.templates.model)
PLACEHOLDERS = ("persona", "emotion", "topic", "turns")

TEMPLATES: dict[str, Template] = BUILTINS


def template_names() -> list[str]:
    """The slugs of the templates in the configured store that are not archived."""
    from core.store import get_engine
    from core.templates.store import template_names as stored_names

    return stored_names(get_engine())


def get_template(name: str, version: int | None = None) -> Template:
    """Version `version` of template `name` (None: the latest); ValidationError(field="template") if there is none."""
    from core.templates.store import resolve

    return resolve(name, version)
