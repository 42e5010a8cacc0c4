"""Per-module log levels from one spec string, in the style of RUST_LOG."""

from __future__ import annotations

from dataclasses import dataclass

_LEVELS = {
    "trace": 5,
    "debug": 10,
    "info": 20,
    "success": 25,
    "warning": 30,
    "warn": 30,
    "error": 40,
    "critical": 50,
    "off": 100,
}


@dataclass(frozen=True)
class LevelSpec:
    default: int
    modules: tuple[tuple[str, int], ...]  # longest prefix first

    @property
    def lowest(self) -> int:
        """The lowest level any module logs at: below it, a line is dropped before any work."""
        return min([self.default, *(level for _, level in self.modules)])

    def level_for(self, module: str) -> int:
        for prefix, level in self.modules:
            if module == prefix or module.startswith(prefix + "."):
                return level
        return self.default


def level_number(name: str) -> int:
    try:
        return _LEVELS[name.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown level {name!r}; use one of {', '.join(sorted(set(_LEVELS)))}"
        ) from None


def parse_level_spec(spec: str) -> LevelSpec:
    """`info,agents.sync=debug,aiokafka=warning` -> default info plus two module levels."""
    default = _LEVELS["info"]
    modules: dict[str, int] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if "=" in part:
            module, _, level = part.partition("=")
            if not module.strip():
                raise ValueError(f"{part!r}: module name missing before '='")
            modules[module.strip()] = level_number(level)
        else:
            default = level_number(part)
    ordered = tuple(sorted(modules.items(), key=lambda item: -len(item[0])))
    return LevelSpec(default=default, modules=ordered)
