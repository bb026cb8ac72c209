-- 017 attempt_count's insert trigger finds each attempt's delivery by its
-- primary key (docs/benchmarks.md, "Directions 2 and 3 measured").
--
-- db/013's attempt_count_insert joined a statement's new attempts to
-- delivery with a plain join. For a batch of 500 attempts against a table
-- of tens of thousands of deliveries the planner sometimes chose a hash join
-- that reads every delivery (17 ms instead of 1 ms a statement) and kept it
-- in the session's cached plan for the rest of the run: 25 us per delivery
-- in one bench/notify.sh run, 4.5 us in another. A LATERAL look-up with
-- LIMIT 1 stays one probe of delivery's primary key per attempt. The counts
-- are the same: an attempt names exactly one delivery.
CREATE OR REPLACE FUNCTION attempt_count_insert () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH a AS (SELECT d.period, d.channel, x.outcome, count(*) AS n
                 FROM new_rows x
                 CROSS JOIN LATERAL (SELECT e.period, e.channel FROM delivery e
                                      WHERE e.id = x.delivery_id LIMIT 1) d
                GROUP BY d.period, d.channel, x.outcome),
         v AS (SELECT report_change_bump (ARRAY (SELECT period FROM a)))
    INSERT INTO attempt_count AS c (period, channel, outcome, shard, n)
    SELECT period, channel, outcome, delivery_count_shard (), n FROM a, v
     ORDER BY period, channel, outcome
    ON CONFLICT (period, channel, outcome, shard) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END
$$;
