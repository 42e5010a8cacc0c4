"""The compatibility gate: released schemas against the code, under BACKWARD_TRANSITIVE rules.

The repository keeps every released version of every topic's schema (topics/released/TOPIC/
vN.json, written by `mgw topics release`). The rule, as docs/TOPICS.md states it:

- Within a version, a change may only add: an optional field, an enum value, a wider type
  (an integer field may become a number, a field may become nullable), a looser constraint.
  A required field added, a field removed or retyped, an enum value removed or a tightened
  constraint (shorter max length, a new pattern, a higher minimum) breaks readers of the
  records already written, and subscribers built on the released schema.
- A breaking change raises the payload's `version`. Every released version stays readable:
  its model stays in the topic's `older_payloads` (upcasting to the next version) and still
  matches its released schema. Released topics stay in the catalog.

Transitive: the code is compared with every released version, not only with the last one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from topics.json_schema import JsonSchema, topic_schemas
from topics.registry import TopicSpec

RELEASE_COMMAND = "mgw topics release"
# Shipped as package data: the gateway and `mgw topics contracts` read it from an installed copy.
RELEASED_ROOT = Path(__file__).resolve().parent / "released"
_NUMERIC = {"integer", "number"}


@dataclass(frozen=True)
class Problem:
    topic: str
    version: int | None
    breaking: bool  # False: only not released yet (`mgw topics release` settles it)
    message: str

    def __str__(self) -> str:
        where = self.topic if self.version is None else f"{self.topic} v{self.version}"
        return f"{where}: {self.message}"


# -- Comparing two schemas -----------------------------------------------------------------


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(node)
    seen = set()
    while "$ref" in out:
        ref = out.pop("$ref")
        if ref in seen:
            break
        seen.add(ref)
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        out = {**target, **out}
    return out


def _variants(node: Mapping[str, Any], root: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The alternatives a value may take, each with one type (`any` when untyped)."""
    node = _resolve(node, root)
    for key in ("anyOf", "oneOf"):
        if key in node:
            return [v for alt in node[key] for v in _variants(alt, root)]
    kind = node.get("type")
    if isinstance(kind, list):
        return [{**node, "type": k} for k in kind]
    if kind is None:
        if "const" in node:
            kind = type_name(node["const"])
        elif "enum" in node:
            kinds = {type_name(v) for v in node["enum"]}
            kind = kinds.pop() if len(kinds) == 1 else "any"
        else:
            kind = "any"
    return [{**node, "type": kind}]


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _accepts(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    return (
        new["type"] == "any"
        or new["type"] == old["type"]
        or (old["type"] == "integer" and new["type"] == "number")
    )


def _describe(variants: list[dict[str, Any]]) -> str:
    return " or ".join(sorted({v["type"] for v in variants}))


def _narrowed(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[str]:
    """Constraints of `new` that reject values `old` accepted."""
    if "const" in new and new.get("const") != old.get("const"):
        yield f"now fixed to {new['const']!r} (was {old.get('const', 'free')!r})"
    if "enum" in new:
        if "enum" not in old and "const" not in old:
            yield "now restricted to " + ", ".join(map(str, new["enum"]))
        else:
            removed = [v for v in old.get("enum", [old.get("const")]) if v not in new["enum"]]
            if removed:
                yield "enum value(s) removed: " + ", ".join(map(str, removed))
    if new.get("format") and new.get("format") != old.get("format"):
        yield f"format now {new['format']} (was {old.get('format', 'none')})"
    if new.get("pattern") and new.get("pattern") != old.get("pattern"):
        yield f"pattern now {new['pattern']} (was {old.get('pattern', 'none')})"
    for key in ("maxLength", "maxItems", "maximum", "exclusiveMaximum", "maxProperties"):
        if key in new and (key not in old or new[key] < old[key]):
            yield f"{key} lowered to {new[key]} (was {old.get(key, 'unbounded')})"
    for key in ("minLength", "minItems", "minimum", "exclusiveMinimum", "minProperties"):
        if key in new and (key not in old or new[key] > old[key]):
            yield f"{key} raised to {new[key]} (was {old.get(key, 'unbounded')})"


def _compare(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    roots: tuple[Mapping[str, Any], Mapping[str, Any]],
    path: str,
    seen: set[tuple[str, str]],
) -> Iterator[str]:
    marker = (json.dumps(old, sort_keys=True), json.dumps(new, sort_keys=True))
    if marker in seen:  # a type used twice (or recursive) is compared, and reported, once
        return
    seen.add(marker)
    old_variants, new_variants = _variants(old, roots[0]), _variants(new, roots[1])
    for o in old_variants:
        candidates = [n for n in new_variants if _accepts(n, o)]
        if not candidates:
            yield (f"{path}: retyped from {_describe(old_variants)} to {_describe(new_variants)}")
            return
        # In a union (say, commands told apart by their `type`), an old alternative is kept
        # when some new alternative reads it: report the closest one's problems only.
        best: list[str] | None = None
        for candidate in candidates:
            issues = list(_variant_issues(o, candidate, roots, path, set(seen)))
            if best is None or len(issues) < len(best):
                best = issues
            if not issues:
                break
        yield from best or ()


def _variant_issues(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    roots: tuple[Mapping[str, Any], Mapping[str, Any]],
    path: str,
    seen: set[tuple[str, str]],
) -> Iterator[str]:
    if new["type"] == "any":
        return
    for why in _narrowed(old, new):
        yield f"{path}: {why}"
    if old["type"] == "object":
        yield from _compare_objects(old, new, roots, path, seen)
    elif old["type"] == "array" and "items" in old and "items" in new:
        yield from _compare(old["items"], new["items"], roots, f"{path}[]", seen)


def _compare_objects(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    roots: tuple[Mapping[str, Any], Mapping[str, Any]],
    path: str,
    seen: set[tuple[str, str]],
) -> Iterator[str]:
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    prefix = f"{path}." if path else ""
    for name, schema in old_props.items():
        if name not in new_props:
            yield f"{prefix}{name}: field removed"
            continue
        if name in new_required and name not in old_required:
            yield f"{prefix}{name}: field made required"
        yield from _compare(schema, new_props[name], roots, f"{prefix}{name}", seen)
    for name in new_props:
        if name not in old_props and name in new_required:
            yield f"{prefix}{name}: required field added"
    old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
    if isinstance(old_extra, dict) and isinstance(new_extra, dict):
        yield from _compare(old_extra, new_extra, roots, f"{prefix}{{}}", seen)


def breaking_changes(old: JsonSchema, new: JsonSchema) -> list[str]:
    """What in `new` breaks readers of `old` (empty: `new` is a compatible successor)."""
    return list(_compare(old, new, (old, new), "", set()))


# -- The released schemas in the repository -------------------------------------------------


def released_path(root: Path, topic: str, version: int) -> Path:
    return root / topic / f"v{version}.json"


def load_released(root: Path) -> dict[tuple[str, int], JsonSchema]:
    out = {}
    for path in sorted(root.glob("*/v*.json")):
        version = path.stem.removeprefix("v")
        if version.isdigit():
            out[(path.parent.name, int(version))] = json.loads(path.read_text())
    return out


def schema_text(schema: JsonSchema) -> str:
    return json.dumps(schema, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def check(root: Path, topics: list[TopicSpec]) -> list[Problem]:
    """Every way the code disagrees with the released schemas; empty when it is in step."""
    released = load_released(root)
    problems: list[Problem] = []
    by_name = {spec.name: spec for spec in topics if spec.payload is not None}
    current: dict[tuple[str, int], JsonSchema] = {}
    for spec in by_name.values():
        versions = [m.version for m in spec.payloads]
        if versions != sorted(set(versions)):
            problems.append(
                Problem(
                    spec.name,
                    None,
                    True,
                    f"payload versions {versions} must rise: older_payloads oldest first, "
                    "each below the current model's version",
                )
            )
        for version, schema in topic_schemas(spec).items():
            # As it would read back from its file (tuples become lists, and so on).
            current[(spec.name, version)] = json.loads(schema_text(schema))
    for (topic, version), old in released.items():
        if topic not in by_name:
            problems.append(
                Problem(
                    topic,
                    version,
                    True,
                    "released, but the topic is no longer in the catalog: subscribers would "
                    "lose it. Keep the topic; remove its released schemas only once nobody "
                    "reads it (docs/TOPICS.md).",
                )
            )
            continue
        new = current.get((topic, version))
        if new is None:
            problems.append(
                Problem(
                    topic,
                    version,
                    True,
                    f"released, but no model of version {version} is left: keep it in the "
                    f"topic's older_payloads (with upcast) so its records stay readable",
                )
            )
            continue
        breaking = breaking_changes(old, new)
        if breaking:
            payload = by_name[topic].payload
            assert payload is not None
            problems.append(
                Problem(
                    topic,
                    version,
                    True,
                    "breaking change under BACKWARD_TRANSITIVE: "
                    + "; ".join(breaking)
                    + f". Raise {payload.__name__}.version instead and keep this version's "
                    "model in older_payloads (docs/TOPICS.md).",
                )
            )
        elif old != new:
            problems.append(
                Problem(
                    topic,
                    version,
                    False,
                    f"changed compatibly since its release: run `{RELEASE_COMMAND}`",
                )
            )
    for topic, version in sorted(set(current) - set(released)):
        problems.append(
            Problem(topic, version, False, f"not released yet: run `{RELEASE_COMMAND}`")
        )
    return problems


def release(root: Path, topics: list[TopicSpec]) -> tuple[list[Path], list[Problem]]:
    """Write the schemas that are new or changed compatibly; nothing if anything breaks."""
    problems = check(root, topics)
    breaking = [p for p in problems if p.breaking]
    if breaking:
        return [], breaking
    written = []
    for spec in topics:
        if spec.payload is None:
            continue
        for version, schema in topic_schemas(spec).items():
            path = released_path(root, spec.name, version)
            text = schema_text(schema)
            if not path.exists() or path.read_text() != text:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                written.append(path)
    return written, []
