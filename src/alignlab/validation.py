"""One-line messages for pydantic errors in settings that are not the run config (judge specs, recipes).

Each error becomes ``place: what is wrong`` with the fix: an unknown key names the close ones and the
allowed keys of its section, a missing key says it is needed.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError


def format_settings_error(err: ValidationError, settings_cls: type[BaseModel], where: str, what: str) -> str:
    """One line per error: its place (``where.key``), what is wrong, and the fix (close names for a typo)."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in (where, *e["loc"]))
        if e["type"] == "extra_forbidden":
            section = _nested_model(settings_cls, e["loc"][:-1])
            allowed = sorted(section.model_fields) if section else []
            close = difflib.get_close_matches(str(e["loc"][-1]), allowed, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            lines.append(
                f"{loc}: {what} has no setting '{e['loc'][-1]}'.{hint} Allowed: {', '.join(allowed)}"
            )
        elif e["type"] == "missing":
            lines.append(f"{loc}: {what} needs this setting")
        else:
            lines.append(f"{loc}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def _nested_model(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        nested = [
            a for a in getattr(field.annotation, "__args__", (field.annotation,)) if isinstance(a, type)
        ]
        nested = [a for a in nested if issubclass(a, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model
