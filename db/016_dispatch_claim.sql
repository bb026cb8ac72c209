-- 016 dispatch claims (docs/notify.md "Claims and takeover", issue 17):
-- a claimed delivery is a row of dispatch_claim instead of a new version of
-- its delivery row (state SENDING, a lease on every row): dispatch writes a
-- delivery once, when its attempt ends. A claim belongs to a dispatcher,
-- and a dispatcher is alive while its one row of `dispatcher` is renewed
-- (every notify.lease_ms / 3); the claims of a dispatcher whose row has run
-- out are taken over by a live one within seconds.

-- The dispatchers, one row each, renewed by its owner. owner is unique per
-- start of a notify process (docs/notify.md), so a restarted process never
-- mistakes its predecessor's claims for its own.
CREATE TABLE dispatcher (
    owner       text        PRIMARY KEY CHECK (owner <> ''),
    alive_until timestamptz NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per claimed delivery: the unique key decides between two
-- dispatchers claiming it at once (INSERT ... ON CONFLICT DO NOTHING).
-- period, channel and fallback are the delivery's (they never change), for
-- the counts below and the report's version. taken_over: the claim came
-- from a dispatcher that died, which may have sent it without recording the
-- attempt (counted, as a re-claimed expired SENDING delivery always was).
CREATE TABLE dispatch_claim (
    delivery_id bigint      PRIMARY KEY,
    owner       text        NOT NULL,
    period      text        NOT NULL,
    channel     text        NOT NULL,
    fallback    boolean     NOT NULL,
    taken_over  boolean     NOT NULL DEFAULT false,
    claimed_at  timestamptz NOT NULL DEFAULT now()
);
-- No index on owner: every claim would write one more entry (a claim is
-- written and deleted once per attempt), and what looks claims up by owner
-- is rare (a takeover, once per dead dispatcher; a reconnect) and reads a
-- table of a few thousand rows.

-- What control shows: a claimed delivery that is not final shows as
-- SENDING, as it did when a claim wrote the state (db/003). delivery_count
-- counts the rows' own states; this adds, per (period, channel), the claims
-- to SENDING and takes them from the state their delivery is in. The claims
-- are few (what is in flight); each one's state is read by primary key in a
-- subquery (a plan that holds with nested loops off, as run.report runs).
-- Same columns as delivery_count (shard 0 for the claims' rows): summed the
-- same way.
CREATE VIEW delivery_count_shown AS
SELECT period, channel, state, shard, n, fallbacks FROM delivery_count
UNION ALL
SELECT c.period, c.channel, s.state, 0::smallint, sum (s.sign)::bigint,
       sum (CASE WHEN c.fallback THEN s.sign ELSE 0 END)::bigint
  FROM (SELECT k.period, k.channel, k.fallback,
               (SELECT d.state FROM delivery d WHERE d.id = k.delivery_id) AS state
          FROM dispatch_claim k OFFSET 0) c
 CROSS JOIN LATERAL (VALUES (c.state, -1), ('SENDING', 1)) s (state, sign)
 WHERE c.state IN ('PENDING', 'RETRY', 'HELD')
 GROUP BY c.period, c.channel, s.state;

-- The state control shows for one delivery (id, state): SENDING while it is
-- claimed and not final. A SQL function, inlined into the query that calls
-- it: one probe of dispatch_claim's primary key.
CREATE FUNCTION delivery_shown_state (id bigint, state text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN state IN ('PENDING', 'RETRY', 'HELD')
                     AND EXISTS (SELECT 1 FROM dispatch_claim c WHERE c.delivery_id = id)
                THEN 'SENDING' ELSE state END
$$;

-- A claim and its end change what the report shows (SENDING): they bump
-- the period's version like a write of the delivery (db/013). A takeover
-- (UPDATE of owner) changes nothing the report reads.
CREATE TRIGGER report_change_insert AFTER INSERT ON dispatch_claim
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION report_change_new ();
CREATE TRIGGER report_change_delete AFTER DELETE ON dispatch_claim
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION report_change_old ();
