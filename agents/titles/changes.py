"""What changed between two versions of a canonical title. Pure."""

from __future__ import annotations

from schemas.content import CanonicalContent


def changed_fields(old: CanonicalContent | None, new: CanonicalContent) -> list[str]:
    """Top-level fields whose value differs (the version clock itself does not count)."""
    if old is None:
        return sorted(set(CanonicalContent.model_fields) - {"updated_at"})
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    return sorted(k for k in after if k != "updated_at" and before.get(k) != after.get(k))
