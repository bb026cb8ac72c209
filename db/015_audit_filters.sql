-- 015 audit filters: indexes for control's commands.list and audit.list
-- (docs/control.md "Commands and audit"), which filter by actor, verb,
-- state and time and page newest first by (time, key). Each filter alone
-- is one index range read backwards from `until` (or from the newest row):
-- the first `limit` entries of the range are the answer, however large the
-- log. Combined filters take the index of one and check the others on the
-- rows it yields. The time indexes of 004 and 007 and the (actor, id) index
-- of 006 become (time, key) ones.

DROP INDEX command_received;
CREATE INDEX command_received ON command (received_at, command_id);
CREATE INDEX command_client ON command (client, received_at, command_id);
CREATE INDEX command_verb ON command (verb, received_at, command_id);
CREATE INDEX command_state ON command (state, received_at, command_id);

DROP INDEX audit_log_at;
CREATE INDEX audit_log_at ON audit_log (at, id);
DROP INDEX audit_log_actor;
CREATE INDEX audit_log_actor ON audit_log (actor, at, id);
CREATE INDEX audit_log_verb ON audit_log (verb, at, id);
CREATE INDEX audit_log_outcome ON audit_log (outcome, at, id);

-- Which actors, verbs and states occur together (most common combinations),
-- so that combined filters are estimated closer to the truth than the
-- product of each column's frequencies. A combination of common values that
-- never occurs can still be estimated as some rows: then the time index is
-- read over the whole window (docs/benchmarks.md "Commands and audit
-- filters": about 0.1 to 0.3 s at a million audit rows).
CREATE STATISTICS command_filters (mcv) ON client, verb, state FROM command;
CREATE STATISTICS audit_log_filters (mcv) ON actor, verb, outcome FROM audit_log;
