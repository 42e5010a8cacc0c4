"""Handlers of notifications (group notifications): watchlist alerts (docs/NOTIFICATIONS.md).

- `notifications-preferences` (notifications.preferences): store each user's preferences,
  then render their read model in Redis.
- `notifications-availability` (content.availability_changed) and `notifications-expiring`
  (content.expiring): turn the event into alerts (rules.py), page through the title's watchers
  whose preferences may want each (the reverse index, 500 then 5,000 users a page, one
  transaction per page), store one notification per user (a unique key: never twice per
  window) and, once the page committed, add it to the user's inbox read model and send it as
  a realtime message on `user.{id}.notifications` straight through the worker's realtime sink
  (`REALTIME_SINK`, a thousand a call; not through sync.realtime: its message id is the
  notification id, so the sink's claim sends it at most once); or hold it until the user's
  quiet hours end (quiet.py) or, for a user in a burst of alerts, to the end of the burst's
  slot (bursts.py).
- `notifications-deliver` (notifications.raised): the held ones, released: add them to the
  user's inbox read model (refilled from PostgreSQL first when Redis has none for the user),
  then send them (several: one digest) through sync.realtime.
- `notifications-read` (notifications.read): mark an inbox entry read.
- `notifications-lookup` (notifications.lookup): the gateway's miss of an inbox or of
  preferences; refill both read models from PostgreSQL and answer over Redis pub/sub (as
  `sync-lookup` does). Redis keeps nothing on disk: this is how both come back after it lost
  them.
- timer `notifications-release`: publish held notifications whose time came, one event per
  user (several: one digest message).
- timer `notifications-overdue`: the gauge `mgw_notifications_overdue_seconds`, how late the
  oldest due one is (the alert MgwNotificationsOverdue), and
  `mgw_notification_pages_unsent_seconds`, how old the oldest fan-out page stored and not
  sent is (MgwNotificationPagesUnsent).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from itertools import groupby
from operator import itemgetter
from typing import Any

from loguru import logger

from agents.adapters.delivery.base import DeliveryRejected
from agents.adapters.delivery.sink import REALTIME_SINK
from agents.framework.context import AgentContext
from agents.framework.runtime import TAKE_WHAT_IS_READY, AgentSpec, TimerSpec
from agents.framework.unit_of_work import unit_of_work
from agents.notifications import bursts, rules, store
from agents.notifications.quiet import release_at
from agents.sync.messages import realtime_event
from agreements.notifications_read_model import (
    INBOX_KEPT,
    PAGE_CALL,
    RawEntry,
    add_page,
    mark_read,
    raw_entry,
    remember_no_inbox,
    remember_no_preferences,
    score_at,
    write_preferences,
)
from core.observability.metrics import NOTIFICATION_PAGES_UNSENT, NOTIFICATIONS_OVERDUE
from schemas.content import AvailabilityChanged, ContentExpiring
from schemas.envelope import Envelope, utcnow
from schemas.notifications import (
    InboxLoaded,
    InboxLookupRequested,
    Notification,
    NotificationRaised,
    NotificationRead,
    PreferencesChanged,
)
from schemas.sync import (
    NotificationDigestMessage,
    NotificationMessage,
    RealtimeEvent,
    RealtimeMessage,
)
from topics.registry import (
    CONTENT_AVAILABILITY_CHANGED,
    CONTENT_EXPIRING,
    NOTIFICATIONS_LOOKUP,
    NOTIFICATIONS_PREFERENCES,
    NOTIFICATIONS_RAISED,
    NOTIFICATIONS_READ,
    TopicSpec,
)

GROUP = "notifications"
# Watchers per page (and per transaction): bounds memory and lock time for a popular title;
# a page of thousands keeps the per-statement round trips a small share of the work. The
# first page of an alert is small, so the first users hear it within a second.
PAGE = 5000
FIRST_PAGE = 500
RELEASE_BATCH = 500
DELIVER_BATCH = 2000


async def apply_preferences(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    touched: set[str] = set()
    async with ctx.pool.acquire() as conn, conn.transaction():
        for env in batch:
            change: PreferencesChanged = env.payload
            await store.apply_preferences(conn, change)
            touched.add(change.user_id)
    await write_preferences(ctx.redis, ctx.prefix, await store.documents(ctx.pool, touched))


async def _store_then_send(
    ctx: AgentContext,
    cause: Envelope[Any],
    alert: rules.Alert,
    window: int,
    now: datetime,
    planned: list[rules.Planned],
    first: set[str],
    before: asyncio.Task[None] | None,
) -> tuple[int, asyncio.Task[None] | None]:
    """One transaction a page: its notifications (those raised for them already, by a
    redelivery, are not stored again) and, for those due now, the page's mark. Once it
    committed, and the page before was sent (`before`), its sends start at once, not when the
    raise next looks (it may be planning a page): how many were stored, and the sending."""
    unsent = None
    async with ctx.pool.acquire() as conn, conn.transaction():
        stored, due = await store.store_page(conn, alert, window, now, planned)
        if due:
            users = [p.user_id for p in due]
            unsent = await store.mark_unsent(conn, cause.event_id, alert, window, now, users)
    if before is not None:
        await before
    if unsent is None:
        return stored, None
    return stored, asyncio.create_task(_deliver_page(ctx, cause, now, due, first, unsent))


async def _raise(
    ctx: AgentContext, env: Envelope[Any], alerts: list[rules.Alert], clock: Callable[[], datetime]
) -> int:
    raised = 0
    # Four stages overlap, each a page apart: the watchers of page N+2 are read while page N+1
    # is planned (the worker's CPU: ids, bodies, device messages) and page N is stored (one
    # transaction, PostgreSQL's time), while page N-1's inboxes and device messages go out
    # (the Redis script, the broker's acknowledgement). A page is stored once the one before
    # committed, and sent once the one before was sent; at most one page read ahead, one
    # planned, one being stored and one being sent bound what is held.
    delivering: asyncio.Task[None] | None = None
    reading: asyncio.Task[list[rules.Candidate]] | None = None
    # The page being stored (then its sends started).
    storing: asyncio.Task[tuple[int, asyncio.Task[None] | None]] | None = None
    # An earlier try of this cause, killed after a page's commit and before its sends: send
    # those pages now (the paging below finds their users notified and stores nothing).
    for page in await store.unsent_of(ctx.pool, env.event_id):
        await _add_to_inboxes(ctx, page.entries)
        if rules.devices_may_be_resent(page.stored_at, clock()):
            for start in range(0, len(page.entries), PAGE_CALL):
                await _to_devices(ctx, _resent(page.entries[start : start + PAGE_CALL]))
        else:
            logger.bind(agent=ctx.agent).warning(
                "a fan-out page of {} notification(s) stored at {} resent to the inboxes only: "
                "its device messages' claims may have expired, and a device may have had them",
                len(page.entries),
                page.stored_at.isoformat(),
            )
        await store.sent(ctx.pool, page.id)

    def read(alert: rules.Alert, after: str, size: int) -> asyncio.Task[list[rules.Candidate]]:
        since = clock() - timedelta(seconds=bursts.WINDOW_S)
        return asyncio.create_task(
            store.candidates(ctx.pool, alert, after, size, since, bursts.BURST)
        )

    async def settle() -> None:
        """Wait for the page being stored (and the page before it to be sent)."""
        nonlocal storing, delivering, raised
        if storing is None:
            return
        task, storing = storing, None
        # Its sends replace the page before's, which it waited for once committed (failed
        # before that, the page before's are still waited for, in `finally`).
        stored, delivering = await task
        raised += stored

    try:
        for alert in alerts:
            window = rules.window_for(alert, env.time)
            title = await store.title_of(ctx.pool, alert.content_id)
            size, reading = FIRST_PAGE, read(alert, "", FIRST_PAGE)
            while reading is not None:
                page = await reading
                # Full: there may be more, read them meanwhile.
                reading = read(alert, page[-1].user_id, PAGE) if len(page) == size else None
                size = PAGE
                now = clock()
                render = rules.PageRenderer(alert, title, env.time, now)
                planned = [
                    render.plan(c, window, bursts.held_until(now, c.recent, _quiet_end(now, c)))
                    for c in page
                ]
                # Those with no delivered notification when the page was read: their inbox is
                # the new one alone.
                first = {c.user_id for c in page if not c.delivered}
                await settle()
                storing = asyncio.create_task(
                    _store_then_send(ctx, env, alert, window, now, planned, first, delivering)
                )
        await settle()
    finally:
        if reading is not None:
            reading.cancel()
        # Failed meanwhile: a page being stored is let commit (its mark makes the cause's
        # next try send it), not abandoned mid-transaction, and its sends, if they started,
        # are waited for.
        if storing is not None:
            (outcome,) = await asyncio.gather(storing, return_exceptions=True)
            if isinstance(outcome, tuple) and outcome[1] is not None:
                delivering = outcome[1]
        if delivering is not None:
            await delivering
    return raised


async def _deliver_page(
    ctx: AgentContext,
    cause: Envelope[Any],
    now: datetime,
    due: list[rules.Planned],
    first: set[str],
    unsent: int,
) -> None:
    """Inbox first, then the device messages (a device told of an alert finds it in the
    inbox), a thousand at a time: a chunk's inboxes by one script call, then its device
    messages straight through the worker's realtime sink (the built-in fan-out: one call of
    the claim-and-publish script; PubNub when configured), which runs while the
    next chunk's inboxes are written (the first devices hear sooner). Not a sync.realtime
    record per user for the sync worker's `realtime-deliver` to send: that hop cost the
    machine more CPU than the fan-out itself (docs/NOTIFICATIONS.md, "Scale"). Nor a
    notifications.raised record per user, nor an outbox row each: the page's mark
    (`store.mark_unsent`, committed with it) is deleted once all of it is sent, and a cause
    redelivered after a crash before that sends the marked pages again (`_raise`); the
    sink's claims (the message id is the notification id) send each at most once."""
    score = score_at(now)
    sending: asyncio.Task[None] | None = None
    try:
        for start in range(0, len(due), PAGE_CALL):
            chunk = due[start : start + PAGE_CALL]
            entries = [(p.user_id, p.note_key, score, p.body, False) for p in chunk]
            # A user's first notification is their whole inbox: added as it is, with no look
            # for an inbox to refill (a title's fan-out is mostly these, or users whose inbox
            # Redis holds).
            await add_page(ctx.redis, ctx.prefix, [e for e in entries if e[0] in first], False)
            await _add_to_inboxes(ctx, [e for e in entries if e[0] not in first])
            if sending is not None:
                await sending
            sending = asyncio.create_task(_to_devices(ctx, [p.message for p in chunk]))
        if sending is not None:
            await sending
    finally:
        # A failure left the page marked unsent (its cause comes again and resends it, the
        # claims skipping what was sent): the chunk in flight is waited for, not abandoned,
        # and its own outcome no longer matters.
        if sending is not None:
            await asyncio.gather(sending, return_exceptions=True)
    await store.sent(ctx.pool, unsent)


async def _to_devices(ctx: AgentContext, events: list[RealtimeEvent]) -> None:
    """Through the sink, which claims each message id as it sends it. A transient failure
    (RealtimeUnavailable, Redis down) is raised: the cause is retried and the marked page
    resent, what was sent skipped by its claim. A message the realtime service refuses for
    good (DeliveryRejected: PubNub's too large, bad channel) is logged and dropped, as
    `realtime-deliver` sets such a record aside: the alert stays in the inbox, and the cause
    is not dead-lettered for one user's message (the sink sent the others of the batch).
    Not filtered by sync's `to_deliver`: it drops commands past their `expires_at`, and a
    notification has no such deadline (its `expires_at` is when the offer ends, content)."""
    try:
        await ctx.use(REALTIME_SINK).deliver(events)
    except DeliveryRejected as exc:
        logger.bind(agent=ctx.agent).error(
            "a device message of {} refused for good, dropped (the inbox has it): {}",
            len(events),
            exc,
        )


def _resent(entries: list[RawEntry]) -> list[RealtimeEvent]:
    """The device messages of a marked page's notifications, sent again (those sent before
    are skipped by their claims)."""
    out = []
    for user_id, _, _, body, _ in entries:
        note = Notification.model_validate_json(body)
        message = NotificationMessage(notification=note)
        out.append(
            RealtimeEvent(
                user_id=user_id,
                message_id=note.notification_id,
                message=message,
                occurred_at=note.created_at,
            )
        )
    return out


def _outgoing(
    ctx: AgentContext, cause: Envelope[Any], user_id: str, notes: list[Notification]
) -> tuple[TopicSpec, Envelope[Any]]:
    """The sync.realtime record telling the user's devices of these notifications: one as
    itself, several as one digest (its id derived from theirs, so sent at most once)."""
    if len(notes) == 1:
        message: RealtimeMessage = NotificationMessage(notification=notes[0])
        ident = notes[0].notification_id
    else:
        message = NotificationDigestMessage(notifications=notes)
        ident = bursts.digest_id([n.notification_id for n in notes])
    event = realtime_event(user_id, message, ident, max(n.created_at for n in notes), cause)
    envelope = ctx.publisher.build_envelope(event.payload, event.key, event.correlation_id)
    return event.topic, envelope


async def _add_to_inboxes(ctx: AgentContext, entries: list[RawEntry]) -> None:
    """Add to the inboxes Redis holds; those it holds none for (new, expired, or lost with
    Redis) are refilled from PostgreSQL instead, which has these entries too (committed
    before), so the unread count is not only this alert."""
    if not entries:
        return
    missing = await add_page(ctx.redis, ctx.prefix, entries, only_present=True)
    if missing:
        refill = await store.inbox_entries(ctx.pool, missing, INBOX_KEPT)
        await add_page(ctx.redis, ctx.prefix, refill, only_present=False)


def _quiet_end(now: datetime, candidate: rules.Candidate) -> datetime | None:
    if candidate.quiet_hours is None:
        return None
    return release_at(now, candidate.time_zone, candidate.quiet_hours)


Alerts = Callable[[AgentContext, Any], Awaitable[list[rules.Alert]]]


def alert_agent(
    of: Alerts, clock: Callable[[], datetime] = utcnow
) -> Callable[[AgentContext, list[Envelope[Any]]], Any]:
    async def raise_alerts(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
        raised = 0
        for env in batch:
            raised += await _raise(ctx, env, await of(ctx, env.payload), clock)
        if raised:
            logger.info("{} notification(s) raised from {} event(s)", raised, len(batch))

    return raise_alerts


async def _of_change(ctx: AgentContext, event: AvailabilityChanged) -> list[rules.Alert]:
    alerts = rules.alerts_of_change(event)
    if event.appeared:
        async with ctx.pool.acquire() as conn:
            episode = await store.episode_of(conn, event.canonical_id)
        if episode is not None:
            alerts += rules.alerts_of_new_season(event, *episode)
    return alerts


async def _of_expiry(ctx: AgentContext, event: ContentExpiring) -> list[rules.Alert]:
    return rules.alerts_of_expiry(event)


async def deliver(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """The notifications held (quiet hours, a burst) and released by the timer: inbox first,
    then the device messages, a device told of an alert finds it in the inbox. Both are
    idempotent, so a redelivered record adds nothing and sends nothing twice. Several
    notifications released together go to devices as one digest. One Redis round trip for
    the batch's inboxes and one broker round trip for its messages."""
    entries: list[RawEntry] = []
    outgoing = []
    for env in batch:
        raised: NotificationRaised = env.payload
        user_id, notes = raised.user_id, raised.notifications
        entries.extend(raw_entry(user_id, note) for note in notes)
        outgoing.append(_outgoing(ctx, env, user_id, notes))
    await _add_to_inboxes(ctx, entries)
    await ctx.publisher.send_envelopes(outgoing)


async def apply_read(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    async with ctx.pool.acquire() as conn, conn.transaction():
        for env in batch:
            read: NotificationRead = env.payload
            await store.mark_read(conn, read.user_id, read.notification_id, read.read_at)
    for env in batch:
        await mark_read(
            ctx.redis, ctx.prefix, env.payload.user_id, str(env.payload.notification_id)
        )


def releaser(clock: Callable[[], datetime] = utcnow) -> Callable[[AgentContext], Any]:
    async def release(ctx: AgentContext) -> int:
        async with unit_of_work(ctx) as uow:
            due = await store.release_due(uow.conn, clock(), RELEASE_BATCH)
            # One event per user: what quiet hours or a burst held goes out as one digest.
            for user_id, group in groupby(due, key=itemgetter(0)):
                uow.emit(
                    NOTIFICATIONS_RAISED,
                    NotificationRaised(user_id=user_id, notifications=[n for _, n in group]),
                    key=user_id,
                )
        return len(due)

    return release


async def answer_lookups(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """The gateway found no inbox or no preferences in Redis for these users: load both from
    PostgreSQL into the read models (the newest INBOX_KEPT delivered, read ones read), then
    answer each asker with the inbox's count. A user with none of either is remembered
    briefly, so their GETs stop asking. Adding is idempotent (`add_page`), and preferences are
    written only where Redis still has none, so a delivery or a change applied meanwhile, or a
    redelivered request, changes nothing twice."""
    users = {env.payload.user_id for env in batch}
    entries = await store.inbox_entries(ctx.pool, users, INBOX_KEPT)
    await add_page(ctx.redis, ctx.prefix, entries, only_present=False)
    counts = Counter(entry[0] for entry in entries)
    await remember_no_inbox(ctx.redis, ctx.prefix, users - counts.keys())
    preferences = await store.documents(ctx.pool, users)
    await write_preferences(ctx.redis, ctx.prefix, preferences, only_missing=True)
    await remember_no_preferences(
        ctx.redis, ctx.prefix, users - {doc.user_id for doc in preferences}
    )
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for env in batch:
            request: InboxLookupRequested = env.payload
            answer = InboxLoaded(user_id=request.user_id, entries=counts[request.user_id])
            pipe.publish(request.reply_channel, answer.model_dump_json())
        await pipe.execute()


def overdue_gauge(clock: Callable[[], datetime] = utcnow) -> Callable[[AgentContext], Any]:
    """Set how long the oldest due notification has waited past its deliver_at: the release
    timer publishes 500 every 30 s, so a quiet hour ending for many users at once queues up
    behind it, and lag cannot show it (held rows are in PostgreSQL, not on a topic). And how
    old the oldest fan-out page marked unsent is: a cause dead-lettered after a page's commit
    leaves its notifications stored and unsent until it is replayed, which no lag shows
    either (the record left the topic for the dead letters)."""

    async def measure(ctx: AgentContext) -> float:
        now = clock()
        oldest = await store.oldest_due(ctx.pool, now)
        waited = 0.0 if oldest is None else (now - oldest).total_seconds()
        NOTIFICATIONS_OVERDUE.set(waited)
        unsent = await store.oldest_unsent(ctx.pool)
        NOTIFICATION_PAGES_UNSENT.set(
            0.0 if unsent is None else max(0.0, (now - unsent).total_seconds())
        )
        return waited

    return measure


AGENTS = [
    AgentSpec(
        name="notifications-preferences",
        group=GROUP,
        topic=NOTIFICATIONS_PREFERENCES,
        handler=apply_preferences,
        batch_within_s=TAKE_WHAT_IS_READY,
        description="stores users' notification preferences and renders their read model",
    ),
    AgentSpec(
        name="notifications-availability",
        group=GROUP,
        topic=CONTENT_AVAILABILITY_CHANGED,
        handler=alert_agent(_of_change),
        batch_within_s=TAKE_WHAT_IS_READY,
        description="raises `arrived`, `price_drop` and `new_season` alerts for the watchers of "
        "a title (or an episode's series) on their service in their region",
    ),
    AgentSpec(
        name="notifications-expiring",
        group=GROUP,
        topic=CONTENT_EXPIRING,
        handler=alert_agent(_of_expiry),
        batch_within_s=TAKE_WHAT_IS_READY,
        description="raises `leaving_soon` alerts for the watchers of a title leaving their "
        "service",
    ),
    AgentSpec(
        name="notifications-deliver",
        group=GROUP,
        topic=NOTIFICATIONS_RAISED,
        handler=deliver,
        batch_within_s=TAKE_WHAT_IS_READY,
        # A fan-out's records come by the thousand: fewer, larger Redis pipelines and produce
        # batches per record.
        batch_size=DELIVER_BATCH,
        description="adds each notification to the user's inbox and sends it to their devices",
    ),
    AgentSpec(
        name="notifications-read",
        group=GROUP,
        topic=NOTIFICATIONS_READ,
        handler=apply_read,
        batch_within_s=TAKE_WHAT_IS_READY,
        description="marks inbox entries read",
    ),
    AgentSpec(
        name="notifications-lookup",
        group=GROUP,
        topic=NOTIFICATIONS_LOOKUP,
        handler=answer_lookups,
        batch_within_s=TAKE_WHAT_IS_READY,
        description="refills a user's inbox and preferences read models from PostgreSQL on the "
        "gateway's miss",
    ),
]

TIMERS = [
    TimerSpec(name="notifications-release", group=GROUP, interval_s=30.0, run=releaser()),
    TimerSpec(name="notifications-overdue", group=GROUP, interval_s=30.0, run=overdue_gauge()),
]
