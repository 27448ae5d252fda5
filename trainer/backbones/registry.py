"""The backbone registry: a new backbone is one class decorated with `@register_backbone("name")`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from trainer.backbones.base import Backbone

BACKBONES: dict[str, type[Backbone]] = {}

B = TypeVar("B", bound=type[Backbone])


def register_backbone(name: str) -> Callable[[B], B]:
    def decorator(cls: B) -> B:
        if name in BACKBONES and BACKBONES[name] is not cls:
            raise ValueError(f"backbone {name!r} is already registered by {BACKBONES[name].__qualname__}")
        cls.name = name
        BACKBONES[name] = cls
        return cls

    return decorator


def get_backbone(name: str, **options: Any) -> Backbone:
    """Build a registered backbone; unknown names and options get errors that list the valid ones."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known backbones: {', '.join(sorted(BACKBONES))}")
    cls = BACKBONES[name]
    try:
        return cls(**options)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
            raise ValueError(f"backbone {name!r}: {exc}; valid options: {', '.join(valid)}") from None
        raise
