-- 013 report counters: what control's run.report (services/control/bf_report.c,
-- docs/control.md "Reconciliation report") reads without a pass over the
-- period, kept exact by statement-level triggers like delivery_count
-- (006_delivery_count.sql):
--   attempt_count  delivery_attempt rows by (period, channel of the notice,
--                  outcome): the report's "attempts" in milliseconds instead
--                  of a join of every attempt to its notice;
--   report_change  a change counter per period: every statement that writes
--                  a row the report reads (delivery, delivery_attempt, bill,
--                  settlement_run) adds 1 to its shard's row for each period
--                  it touched. sum(changes) over the shards is the period's
--                  version: it grows with every committed change and with
--                  nothing else, so a report computed in a snapshot whose
--                  version equals the current one is still exact (control
--                  keeps the newest report per period with its version).

-- Shards as in delivery_count: one row per (key, shard) so concurrent
-- writers do not queue on one row; the figure is the sum over shards.
CREATE TABLE attempt_count (
    period  text     NOT NULL,
    channel text     NOT NULL,
    outcome text     NOT NULL,
    shard   smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
    n       bigint   NOT NULL DEFAULT 0,
    PRIMARY KEY (period, channel, outcome, shard)
);

CREATE TABLE report_change (
    period  text     NOT NULL,
    shard   smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
    changes bigint   NOT NULL DEFAULT 0 CHECK (changes >= 0),
    PRIMARY KEY (period, shard)
);

-- Adds 1 to the change counter of each period in periods (sorted, so that
-- two writers lock their rows in one order), on this transaction's shard.
-- (plpgsql, not sql: its statement's plan is kept for the session rather
-- than made again at every call.)
CREATE FUNCTION report_change_bump (periods text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_change AS c (period, shard, changes)
    SELECT p, delivery_count_shard (), 1
      FROM (SELECT DISTINCT p FROM unnest (periods) p WHERE p IS NOT NULL ORDER BY p) x
    ON CONFLICT (period, shard) DO UPDATE SET changes = c.changes + 1;
END
$$;

-- delivery, bill, settlement_run: any INSERT, UPDATE or DELETE statement
-- bumps the periods of its rows (old and new). An UPDATE is not sifted for the columns the report
-- reads: comparing old and new rows would cost a join per row; a bump the
-- report did not need only costs the next request a recomputation.
CREATE FUNCTION report_change_new () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM report_change_bump (ARRAY (SELECT DISTINCT period FROM new_rows));
    RETURN NULL;
END
$$;

CREATE FUNCTION report_change_both () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM report_change_bump (ARRAY (SELECT period FROM new_rows
                                       UNION SELECT period FROM old_rows));
    RETURN NULL;
END
$$;

CREATE FUNCTION report_change_old () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM report_change_bump (ARRAY (SELECT DISTINCT period FROM old_rows));
    RETURN NULL;
END
$$;

-- TRUNCATE removes rows of every period: every period's version moves.
CREATE FUNCTION report_change_all () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'delivery_attempt' THEN
        DELETE FROM attempt_count;
    END IF;
    UPDATE report_change SET changes = changes + 1;
    RETURN NULL;
END
$$;

-- delivery_attempt: the attempts' counters and the change counter, in one
-- statement per triggering statement. The notice of each attempt gives its
-- period and channel (by primary key: one index probe per attempt, on
-- notices the same transaction has just updated).
CREATE FUNCTION attempt_count_insert () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH a AS (SELECT d.period, d.channel, x.outcome, count(*) AS n
                 FROM new_rows x JOIN delivery d ON d.id = x.delivery_id
                GROUP BY d.period, d.channel, x.outcome),
         v AS (SELECT report_change_bump (ARRAY (SELECT period FROM a)))
    INSERT INTO attempt_count AS c (period, channel, outcome, shard, n)
    SELECT period, channel, outcome, delivery_count_shard (), n FROM a, v
     ORDER BY period, channel, outcome
    ON CONFLICT (period, channel, outcome, shard) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END
$$;

-- UPDATE and DELETE of attempts (notify does neither; an operator might):
-- the net change per key, as delivery_count_update does. TG_OP tells which
-- transition tables exist.
CREATE FUNCTION attempt_count_change () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        CREATE TEMP TABLE attempt_count_delta ON COMMIT DROP AS
        SELECT delivery_id, outcome, 1 AS dn FROM new_rows
        UNION ALL SELECT delivery_id, outcome, -1 FROM old_rows;
    ELSE
        CREATE TEMP TABLE attempt_count_delta ON COMMIT DROP AS
        SELECT delivery_id, outcome, -1 AS dn FROM old_rows;
    END IF;
    WITH a AS (SELECT d.period, d.channel, x.outcome, sum(x.dn)::bigint AS n
                 FROM attempt_count_delta x JOIN delivery d ON d.id = x.delivery_id
                GROUP BY d.period, d.channel, x.outcome),
         v AS (SELECT report_change_bump (ARRAY (SELECT period FROM a)))
    INSERT INTO attempt_count AS c (period, channel, outcome, shard, n)
    SELECT period, channel, outcome, delivery_count_shard (), n FROM a, v
     WHERE n <> 0
     ORDER BY period, channel, outcome
    ON CONFLICT (period, channel, outcome, shard) DO UPDATE SET n = c.n + excluded.n;
    DROP TABLE attempt_count_delta;
    RETURN NULL;
END
$$;

-- No writer may slip between the seed below and the triggers: both happen
-- under these locks, in the migration's transaction.
LOCK TABLE delivery, delivery_attempt, bill, settlement_run IN SHARE ROW EXCLUSIVE MODE;

CREATE TRIGGER attempt_count_insert AFTER INSERT ON delivery_attempt
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attempt_count_insert ();
CREATE TRIGGER attempt_count_update AFTER UPDATE ON delivery_attempt
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attempt_count_change ();
CREATE TRIGGER attempt_count_delete AFTER DELETE ON delivery_attempt
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attempt_count_change ();
CREATE TRIGGER attempt_count_truncate AFTER TRUNCATE ON delivery_attempt
    FOR EACH STATEMENT EXECUTE FUNCTION report_change_all ();

-- The other tables the report reads: their statements bump the version only
-- (bill and settlement_run are written by settle, a few statements per
-- chunk). The same four triggers on each (settlement_run is never
-- truncated: bill's foreign key would have it cascade).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['delivery', 'bill', 'settlement_run'] LOOP
        EXECUTE format ('CREATE TRIGGER report_change_insert AFTER INSERT ON %I'
                        ' REFERENCING NEW TABLE AS new_rows'
                        ' FOR EACH STATEMENT EXECUTE FUNCTION report_change_new ()', t);
        EXECUTE format ('CREATE TRIGGER report_change_update AFTER UPDATE ON %I'
                        ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                        ' FOR EACH STATEMENT EXECUTE FUNCTION report_change_both ()', t);
        EXECUTE format ('CREATE TRIGGER report_change_delete AFTER DELETE ON %I'
                        ' REFERENCING OLD TABLE AS old_rows'
                        ' FOR EACH STATEMENT EXECUTE FUNCTION report_change_old ()', t);
        IF t <> 'settlement_run' THEN
            EXECUTE format ('CREATE TRIGGER report_change_truncate AFTER TRUNCATE ON %I'
                            ' FOR EACH STATEMENT EXECUTE FUNCTION report_change_all ()', t);
        END IF;
    END LOOP;
END
$$;

-- An upgraded database starts from the attempts it has; its versions start
-- at 0 (no report computed before this migration is kept anywhere).
INSERT INTO attempt_count (period, channel, outcome, shard, n)
SELECT d.period, d.channel, x.outcome, 0, count(*)
  FROM delivery_attempt x JOIN delivery d ON d.id = x.delivery_id
 GROUP BY d.period, d.channel, x.outcome;
