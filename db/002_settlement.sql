-- 002 settlement: runs and their chunks, bills and bill lines, rating errors,
-- and the transactional outbox the relay publishes from.

CREATE TABLE settlement_run (
    run_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    period            text    NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    state             text    NOT NULL
                      CHECK (state IN ('RUNNING', 'STOPPING', 'STOPPED', 'COMPLETED', 'FAILED')),
    chunk_size        integer NOT NULL CHECK (chunk_size > 0),
    chunks_total      integer NOT NULL DEFAULT 0 CHECK (chunks_total >= 0),
    chunks_done       integer NOT NULL DEFAULT 0 CHECK (chunks_done >= 0),
    subscribers_done  bigint  NOT NULL DEFAULT 0,   -- subscribers rated (bill or no bill)
    bills             bigint  NOT NULL DEFAULT 0,
    amount_total      bigint  NOT NULL DEFAULT 0,   -- sum of bill totals, won
    rating_errors     bigint  NOT NULL DEFAULT 0,
    command_id        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (chunks_done <= chunks_total)
);
-- At most one unfinished run per period.
CREATE UNIQUE INDEX settlement_run_open ON settlement_run (period)
    WHERE state NOT IN ('COMPLETED', 'FAILED');

-- A chunk is a subscriber id range [id_from, id_to). Workers claim PENDING
-- chunks (or CLAIMED ones whose lease expired) with FOR UPDATE SKIP LOCKED.
CREATE TABLE settlement_chunk (
    run_id      bigint  NOT NULL REFERENCES settlement_run (run_id) ON DELETE CASCADE,
    chunk_no    integer NOT NULL CHECK (chunk_no >= 0),
    id_from     bigint  NOT NULL,
    id_to       bigint  NOT NULL CHECK (id_to > id_from),
    state       text    NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'CLAIMED', 'DONE')),
    lease_owner text,
    lease_until timestamptz,
    attempts    integer NOT NULL DEFAULT 0,
    subscribers integer NOT NULL DEFAULT 0,
    bills       integer NOT NULL DEFAULT 0,
    amount      bigint  NOT NULL DEFAULT 0,
    errors      integer NOT NULL DEFAULT 0,
    done_by     text,                   -- the worker that settled it
    finished_at timestamptz,
    PRIMARY KEY (run_id, chunk_no),
    CHECK ((state = 'CLAIMED') = (lease_owner IS NOT NULL AND lease_until IS NOT NULL))
);
CREATE INDEX settlement_chunk_open ON settlement_chunk (run_id, chunk_no) WHERE state <> 'DONE';

CREATE SEQUENCE bill_id_seq AS bigint;

-- G1: the primary key allows one bill per (period, subscriber), whatever
-- reruns, duplicate chunks or crashed workers do.
CREATE TABLE bill (
    period        text     NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    subscriber_id bigint   NOT NULL REFERENCES subscriber (id),
    bill_id       bigint   NOT NULL,
    run_id        bigint   NOT NULL REFERENCES settlement_run (run_id),
    total         bigint   NOT NULL CHECK (total >= 0 AND total % 10 = 0),
    due_date      date     NOT NULL,
    line_count    smallint NOT NULL CHECK (line_count >= 0),
    issued_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period, subscriber_id),
    UNIQUE (period, bill_id)
) PARTITION BY LIST (period);

-- Lines of a bill, in billing-rules.md order. Written only by settle, in the
-- same transaction and COPY batch as their bill; no FK to bill, because a
-- per-row trigger check would double the cost of the bulk write.
CREATE TABLE bill_line (
    period        text     NOT NULL,
    subscriber_id bigint   NOT NULL,
    line_no       smallint NOT NULL CHECK (line_no > 0),
    code          text     NOT NULL CHECK (code <> ''),
    amount        bigint   NOT NULL,
    PRIMARY KEY (period, subscriber_id, line_no)
) PARTITION BY LIST (period);

-- A subscriber whose data breaks a rule; kept until a later rating succeeds.
CREATE TABLE rating_error (
    period        text   NOT NULL,
    subscriber_id bigint NOT NULL REFERENCES subscriber (id) ON DELETE CASCADE,
    run_id        bigint NOT NULL REFERENCES settlement_run (run_id),
    reason        text   NOT NULL,
    detail        text,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period, subscriber_id)
);

-- Transactional outbox (G2): written in the chunk's transaction; the relay
-- gives each row a gapless seq in its own transaction and publishes only
-- after that commits. payload is the exact protobuf that goes on the wire.
CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      uuid   NOT NULL UNIQUE,
    topic         text   NOT NULL,
    period        text   NOT NULL,
    bill_id       bigint NOT NULL,
    subscriber_id bigint NOT NULL,
    payload       bytea  NOT NULL,
    seq           bigint UNIQUE CHECK (seq > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    sequenced_at  timestamptz,
    UNIQUE (topic, period, bill_id)
);
CREATE INDEX outbox_unsequenced ON outbox (id) WHERE seq IS NULL;

-- The relay's high-water mark; a single row.
CREATE TABLE relay_state (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_seq   bigint  NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    relay_id   text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO relay_state DEFAULT VALUES;

-- Creates the partitions of every period-partitioned table for period p.
-- Idempotent and safe from concurrent callers.
CREATE FUNCTION bf_ensure_period (p text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t text;
    part text;
BEGIN
    IF p IS NULL OR p !~ '^[0-9]{4}-(0[1-9]|1[0-2])$' THEN
        RAISE EXCEPTION 'invalid period %', p USING ERRCODE = '22023';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('bf_ensure_period'));
    FOREACH t IN ARRAY ARRAY['usage_record', 'charge', 'bill', 'bill_line'] LOOP
        part := t || '_' || replace(p, '-', '_');
        IF to_regclass(quote_ident(part)) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES IN (%L)', part, t, p);
        END IF;
    END LOOP;
END
$$;
