-- 006 delivery counters: delivery_count holds the number of deliveries per
-- (period, channel, state), kept exact by statement-level triggers on
-- delivery, so control answers "how many notices, in which state" in
-- milliseconds whatever the size of a period (services/control/bf_query.h);
-- and the partial indexes control's bounded lists read.

-- The figure for (period, channel, state) is sum(n) over the shards; one
-- shard's n may be negative (a delivery counted in by one connection and
-- out by another). fallbacks counts the deliveries that are SMS fallbacks
-- of a failed email (delivery.fallback_of IS NOT NULL) the same way.
CREATE TABLE delivery_count (
    period    text     NOT NULL,
    channel   text     NOT NULL,
    state     text     NOT NULL,
    shard     smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
    n         bigint   NOT NULL DEFAULT 0,
    fallbacks bigint   NOT NULL DEFAULT 0,
    PRIMARY KEY (period, channel, state, shard)
);

-- The shard a writing transaction adds its changes to. Concurrent
-- dispatchers must not queue on one hot counter row (nor deadlock over two:
-- a dispatcher's transaction updates deliveries, then inserts fallbacks), so
-- each transaction takes a shard of its own: the first of the 16 whose
-- transaction-level advisory lock it gets, starting at pg_backend_pid() % 16
-- (the one it got before, since the lock is re-entrant). With 16 writers or
-- more at once, the rest share their home shard and wait on its row locks.
-- Lock keys: (1650877539 = 'bfdc', shard).
CREATE FUNCTION delivery_count_shard () RETURNS smallint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    home int := pg_backend_pid () % 16;
BEGIN
    FOR i IN 0..15 LOOP
        IF pg_try_advisory_xact_lock (1650877539, (home + i) % 16) THEN
            RETURN (home + i) % 16;
        END IF;
    END LOOP;
    RETURN home;
END
$$;

-- Each function aggregates the statement's transition table (one row per
-- key it touched, in key order) and adds the net change; a key whose net
-- change is zero (an UPDATE that moved no delivery between states) is not
-- written at all.
CREATE FUNCTION delivery_count_insert () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery_count AS c (period, channel, state, shard, n, fallbacks)
    SELECT period, channel, state, delivery_count_shard (), count(*), count(fallback_of)
      FROM new_rows
     GROUP BY period, channel, state
     ORDER BY period, channel, state
    ON CONFLICT (period, channel, state, shard)
    DO UPDATE SET n = c.n + excluded.n, fallbacks = c.fallbacks + excluded.fallbacks;
    RETURN NULL;
END
$$;

CREATE FUNCTION delivery_count_update () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery_count AS c (period, channel, state, shard, n, fallbacks)
    SELECT period, channel, state, delivery_count_shard (), sum(dn), sum(df)
      FROM (SELECT period, channel, state, 1 AS dn, (fallback_of IS NOT NULL)::int AS df
              FROM new_rows
            UNION ALL
            SELECT period, channel, state, -1, -((fallback_of IS NOT NULL)::int)
              FROM old_rows) d
     GROUP BY period, channel, state
    HAVING sum(dn) <> 0 OR sum(df) <> 0
     ORDER BY period, channel, state
    ON CONFLICT (period, channel, state, shard)
    DO UPDATE SET n = c.n + excluded.n, fallbacks = c.fallbacks + excluded.fallbacks;
    RETURN NULL;
END
$$;

CREATE FUNCTION delivery_count_delete () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery_count AS c (period, channel, state, shard, n, fallbacks)
    SELECT period, channel, state, delivery_count_shard (), -count(*), -count(fallback_of)
      FROM old_rows
     GROUP BY period, channel, state
     ORDER BY period, channel, state
    ON CONFLICT (period, channel, state, shard)
    DO UPDATE SET n = c.n + excluded.n, fallbacks = c.fallbacks + excluded.fallbacks;
    RETURN NULL;
END
$$;

-- TRUNCATE (also by CASCADE from bill) empties the counters with it.
CREATE FUNCTION delivery_count_truncate () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM delivery_count;
    RETURN NULL;
END
$$;

-- No writer may slip between the seed below and the triggers: both happen
-- under this lock, in the migration's transaction.
LOCK TABLE delivery IN SHARE ROW EXCLUSIVE MODE;

-- Transition tables need one trigger per event. They fire for INSERT,
-- INSERT ... ON CONFLICT, COPY, UPDATE and DELETE statements alike.
CREATE TRIGGER delivery_count_insert AFTER INSERT ON delivery
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_count_insert ();
CREATE TRIGGER delivery_count_update AFTER UPDATE ON delivery
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_count_update ();
CREATE TRIGGER delivery_count_delete AFTER DELETE ON delivery
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_count_delete ();
CREATE TRIGGER delivery_count_truncate AFTER TRUNCATE ON delivery
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_count_truncate ();

-- An upgraded database starts from the rows it has.
INSERT INTO delivery_count (period, channel, state, shard, n, fallbacks)
SELECT period, channel, state, 0, count(*), count(fallback_of)
  FROM delivery
 GROUP BY period, channel, state;

-- "Held until": the earliest release of a period's held notices is the
-- first entry of this index for the period (delivery_due, ordered by
-- not_before across all open states, would walk every pending notice
-- first). Only HELD rows are in it.
CREATE INDEX delivery_held ON delivery (period, not_before) WHERE state = 'HELD';

-- Failed notices newest first, per period and channel: the failures list
-- reads at most `limit` entries of each (period, channel) that has any.
CREATE INDEX delivery_failed ON delivery (period, channel, final_at DESC, id DESC)
    WHERE state = 'FAILED';

-- The audit log of one key name, newest first (audit.list actor=NAME).
CREATE INDEX audit_log_actor ON audit_log (actor, id);
