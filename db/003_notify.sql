-- 003 notify: templates, deliveries (one per bill, channel and purpose),
-- every send attempt, and the ingest cursor over settle's event sequence.

CREATE TABLE template (
    channel    text    NOT NULL CHECK (channel IN ('EMAIL', 'SMS', 'PUSH')),
    purpose    text    NOT NULL CHECK (purpose ~ '^[A-Z][A-Z0-9_]{0,31}$'),
    version    integer NOT NULL CHECK (version > 0),
    subject    text,                 -- email subject / LMS and push title
    body       text    NOT NULL,     -- text body (email text part, SMS/LMS, push)
    body_html  text,                 -- email HTML part
    short_body text,                 -- used when the body cannot fit the channel
    active     boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, purpose, version)
);
CREATE UNIQUE INDEX template_one_active ON template (channel, purpose) WHERE active;

-- G4: the unique key allows one notice per (bill, channel, purpose) however
-- often an event is redelivered. The SMS channel covers LMS: which of the two
-- is decided when the text is rendered.
CREATE TABLE delivery (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    period              text    NOT NULL,
    bill_id             bigint  NOT NULL,
    subscriber_id       bigint  NOT NULL,
    channel             text    NOT NULL CHECK (channel IN ('EMAIL', 'SMS', 'PUSH')),
    purpose             text    NOT NULL,
    state               text    NOT NULL DEFAULT 'PENDING'
                        CHECK (state IN ('PENDING', 'SENDING', 'RETRY', 'HELD',
                                         'DELIVERED', 'FAILED', 'CANCELLED')),
    attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    attempt_base        integer NOT NULL DEFAULT 0,   -- attempts when an operator last retried it
    not_before          timestamptz NOT NULL DEFAULT now(),  -- backoff, quiet hours
    hold_reason         text,
    lease_owner         text,
    lease_until         timestamptz,
    event_seq           bigint,          -- publish sequence of the event that created it
    fallback_of         bigint REFERENCES delivery (id),
    template_version    integer,
    provider_message_id text,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    final_at            timestamptz,
    UNIQUE (bill_id, channel, purpose),
    FOREIGN KEY (period, bill_id) REFERENCES bill (period, bill_id),
    CHECK ((state IN ('DELIVERED', 'FAILED', 'CANCELLED')) = (final_at IS NOT NULL))
);
-- Due work in the order it goes out. A claimed (SENDING) delivery's
-- not_before is its lease expiry, so expired claims come due here too; held
-- notices share their window's end and leave in bill order.
CREATE INDEX delivery_due ON delivery (not_before, bill_id)
    WHERE state IN ('PENDING', 'RETRY', 'HELD', 'SENDING');
CREATE INDEX delivery_bill ON delivery (period, bill_id);

-- G5: every attempt, with time, provider, outcome and error.
CREATE TABLE delivery_attempt (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id         bigint  NOT NULL REFERENCES delivery (id),
    attempt_no          integer NOT NULL CHECK (attempt_no > 0),
    sent_as             text    NOT NULL CHECK (sent_as IN ('EMAIL', 'SMS', 'LMS', 'PUSH')),
    provider            text    NOT NULL,
    started_at          timestamptz NOT NULL,
    finished_at         timestamptz NOT NULL,
    outcome             text    NOT NULL
                        CHECK (outcome IN ('DELIVERED', 'DUPLICATE', 'TRANSIENT',
                                           'PERMANENT', 'THROTTLED')),
    status_code         integer,
    error               text,
    provider_message_id text,
    UNIQUE (delivery_id, attempt_no)
);

-- Highest event sequence fully ingested, per consumer.
CREATE TABLE notify_cursor (
    consumer   text   PRIMARY KEY,
    last_seq   bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Dispatch switch kept across restarts (pause/resume commands).
CREATE TABLE dispatch_state (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    paused     boolean NOT NULL DEFAULT false,
    changed_by text,                  -- command_id of the last change
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO dispatch_state DEFAULT VALUES;
