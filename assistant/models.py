"""What the tools answer: small typed models (their JSON Schema is each tool's output schema),
read from the API's documents. Only what an assistant needs to choose and act is kept, so a
model's context is spent on titles, not on HLC stamps and strategy scores. Pure: no I/O."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Action = Literal["play", "pause", "seek", "load"]
DeviceKind = Literal["tv", "phone", "tablet", "web", "desktop"]


class TitleHit(BaseModel):
    content_id: uuid.UUID
    title: str
    release_year: int | None = None
    genres: list[str] = Field(default_factory=list)
    platforms: list[str] = Field(default_factory=list, description="where it is offered")
    relevance: float = Field(description="the search's score, higher is better")


class SearchResults(BaseModel):
    total_count: int = Field(description="matches over all pages")
    results: list[TitleHit]


class Offer(BaseModel):
    """One way to watch a title: a platform, how (subscription, free, rent, buy) and the link."""

    platform: str
    availability_type: str
    regions: list[str] = Field(default_factory=list)
    price_cents: int | None = None
    currency: str | None = None
    deep_link: str | None = None
    web_url: str | None = None
    available_until: datetime | None = None


class TitleDetails(BaseModel):
    content_id: uuid.UUID
    title: str
    content_type: str
    release_year: int | None = None
    runtime_minutes: int | None = None
    genres: list[str] = Field(default_factory=list)
    description: str | None = None
    maturity_rating: str | None = None
    average_rating: float | None = None
    region: str | None = Field(default=None, description="the region `where_to_watch` is for")
    where_to_watch: list[Offer] = Field(
        description="offers open now (in `region` when one was asked for)"
    )


class Recommendation(BaseModel):
    content_id: uuid.UUID
    title: str
    score: float
    reasons: list[str] = Field(default_factory=list)


class Recommendations(BaseModel):
    time_bucket: str = Field(description="the part of the day the titles were picked for")
    device: str | None = None
    mood: str | None = None
    region: str | None = None
    items: list[Recommendation]


class WatchlistItem(BaseModel):
    content_id: uuid.UUID
    device_id: str | None = Field(default=None, description="the device it was added on")


class Watchlist(BaseModel):
    version: int
    items: list[WatchlistItem] = Field(description="most recently added first")


class Accepted(BaseModel):
    """A write the broker acknowledged: it reaches the user's devices once the agents applied it."""

    content_id: uuid.UUID
    event_id: str
    in_watchlist: bool


class ProgressItem(BaseModel):
    content_id: uuid.UUID
    position_seconds: float
    duration_seconds: float
    completion: float = Field(description="0 to 1")
    state: str
    device_id: str
    updated_at: datetime
    # A series is listed once, as the episode to play (docs/SYNC.md, "Series in continue
    # watching"): an assistant can say "S2E4 of <series> is next".
    series_id: uuid.UUID | None = None
    season_number: int | None = None
    episode_number: int | None = None
    up_next: bool = Field(default=False, description="the episode after one the user finished")


class Progress(BaseModel):
    items: list[ProgressItem] = Field(description="titles under way, newest first")


class NowPlaying(BaseModel):
    content_id: uuid.UUID
    position_seconds: float
    state: str


class Device(BaseModel):
    device_id: str
    device_name: str
    device_type: str
    platform: str
    is_online: bool
    last_seen: datetime
    remote_controllable: bool = Field(description="whether it obeys remote commands")
    now_playing: NowPlaying | None = None


class Devices(BaseModel):
    devices: list[Device]


class CommandSent(BaseModel):
    """The command is on its way: the router delivers it to the device unless it is offline,
    not remote-controllable or the command expired first (the sender hears which)."""

    command_id: uuid.UUID
    device_id: str
    command: dict[str, Any]
    expires_at: datetime


def search_results(body: dict[str, Any]) -> SearchResults:
    return SearchResults(
        total_count=body["total_count"],
        results=[
            TitleHit(
                content_id=r["canonical_id"],
                title=r["title"],
                release_year=r.get("release_year"),
                genres=r.get("genres", []),
                platforms=r.get("platforms", []),
                relevance=r.get("relevance_score", 0.0),
            )
            for r in body.get("results", [])
        ],
    )


def open_now(offer: dict[str, Any], now: datetime) -> bool:
    start, end = offer.get("available_from"), offer.get("available_until")
    if start and datetime.fromisoformat(start) > now:
        return False
    return not (end and datetime.fromisoformat(end) <= now)


def offered_in(offer: dict[str, Any], region: str | None) -> bool:
    # An offer that lists no region is one the title left (docs/VECTORS.md, the payload).
    regions = offer.get("regions") or []
    return bool(regions) and (region is None or region.upper() in regions)


def title_details(body: dict[str, Any], region: str | None, now: datetime) -> TitleDetails:
    offers = [
        Offer.model_validate(o)
        for o in body.get("availability", [])
        if open_now(o, now) and offered_in(o, region)
    ]
    return TitleDetails(
        content_id=body["canonical_id"],
        title=body["title"],
        content_type=body["content_type"],
        release_year=body.get("release_year"),
        runtime_minutes=body.get("runtime_minutes"),
        genres=body.get("genres", []),
        description=body.get("description"),
        maturity_rating=body.get("maturity_rating"),
        average_rating=body.get("average_rating"),
        region=region.upper() if region else None,
        where_to_watch=offers,
    )


def recommendations(body: dict[str, Any]) -> Recommendations:
    context = body.get("context", {})
    return Recommendations(
        time_bucket=context.get("time_bucket", ""),
        device=context.get("device_type"),
        mood=context.get("mood"),
        region=context.get("region"),
        items=[
            Recommendation(
                content_id=r["canonical_id"],
                title=r["title"],
                score=r["score"],
                reasons=r.get("reasons", []),
            )
            for r in body.get("recommendations", [])
        ],
    )


def watchlist(body: dict[str, Any]) -> Watchlist:
    return Watchlist(
        version=body["version"],
        items=[
            WatchlistItem(content_id=i["content_id"], device_id=i.get("device_id"))
            for i in body.get("items", [])
        ],
    )


def progress(items: list[dict[str, Any]]) -> Progress:
    return Progress(items=[ProgressItem.model_validate(i) for i in items])


def devices(body: dict[str, Any]) -> Devices:
    return Devices(
        devices=[
            Device(
                device_id=d["device_id"],
                device_name=d["device_name"],
                device_type=d["device_type"],
                platform=d["platform"],
                is_online=d["is_online"],
                last_seen=d["last_seen"],
                remote_controllable=d.get("capabilities", {}).get("remote_controllable", False),
                now_playing=d.get("now_playing"),
            )
            for d in body.get("devices", [])
        ]
    )


def remote_command(
    action: Action, position_seconds: float | None, content_id: uuid.UUID | None
) -> dict[str, Any] | tuple[str, str]:
    """The API's command for an action, or the argument it lacks and why."""
    if action == "seek":
        if position_seconds is None:
            return ("position_seconds", "seek needs the position to go to")
        return {"type": "seek", "position_seconds": position_seconds}
    if action == "load":
        if content_id is None:
            return ("content_id", "load needs the title to load")
        return {
            "type": "load_content",
            "content_id": str(content_id),
            "start_position": position_seconds or 0,
        }
    return {"type": action}
