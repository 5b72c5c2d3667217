"""The environment variable names the platform's processes read, from their settings classes,
so a deployment file that sets a misspelt one (read by nothing) is caught."""

from __future__ import annotations

from pydantic import AliasChoices

from services.common.serve import SETTINGS, _load

# Read straight from the environment, not through a settings class.
READ_DIRECTLY = {"DEMO_ADMIN_PASSWORD"}


def setting_names() -> set[str]:
    names = set(READ_DIRECTLY)
    for target in SETTINGS.values():
        cls = _load(target)
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, info in cls.model_fields.items():
            alias = info.validation_alias
            if isinstance(alias, AliasChoices):
                names.update(str(a).upper() for a in alias.choices)
            elif isinstance(alias, str):
                names.add(alias.upper())
            else:
                names.add(f"{prefix}{name}".upper())
    return names
