-- A page of a fan-out whose notifications are stored (committed) but whose inboxes and device
-- messages may not all have been sent yet: one row per page, written in the page's
-- transaction and deleted once sent, rather than an outbox row per notification (which cost
-- more than the notifications themselves: docs/NOTIFICATIONS.md, "Scale"). A cause redelivered
-- after a crash sends these pages' notifications again (the rows of this alert created in that
-- page's instant, its users between first and last), and only these: a notification sent
-- before is never sent again.
CREATE TABLE notification_pages_unsent (
    id          bigserial   PRIMARY KEY,
    cause_id    uuid        NOT NULL,
    content_id  uuid        NOT NULL,
    platform    text        NOT NULL,
    kind        text        NOT NULL,
    window_no   integer     NOT NULL,
    created_at  timestamptz NOT NULL,
    first_user  text        NOT NULL,
    last_user   text        NOT NULL
);
CREATE INDEX notification_pages_unsent_cause ON notification_pages_unsent (cause_id);
