-- 014 rates: the run's bills and final notices over time, for control's
-- run.rates (docs/control.md "run.rates"), and the control processes that
-- are running, for services.list's leader column.

-- One row a second per run while the run is RUNNING or STOPPING, or while
-- it is its period's newest run and the period has notices PENDING,
-- SENDING or RETRY, and one more when its figures last changed. Written by
-- the active control only (services/control/bf_ratesampler.c), one small
-- INSERT a second; settle and notify never touch it. bills is the run's
-- settlement_run.bills, notices the period's final notices (DELIVERED,
-- FAILED, CANCELLED: the sum of delivery_count) at `at`. The first row of
-- a run is its start (bills 0) so the first second counts too. gap: more
-- than three sampling intervals passed since the row before (no active
-- control then, e.g. during a failover): the change since is known, the
-- rate in between is not.
CREATE TABLE run_rate_sample (
    run_id  bigint      NOT NULL REFERENCES settlement_run (run_id) ON DELETE CASCADE,
    at      timestamptz NOT NULL,
    bills   bigint      NOT NULL CHECK (bills >= 0),
    notices bigint      NOT NULL,
    gap     boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (run_id, at)
);
-- Every lookup goes by run: the primary key (a run's first, newest and
-- each of run.rates' instants) and, for run.rates, the gaps of a run.
-- There is deliberately no index on `at` alone: the planner would walk it
-- across every run's samples.
CREATE INDEX run_rate_sample_gap ON run_rate_sample (run_id, at) WHERE gap;

-- Every control process, active or standby, writes its row every
-- heartbeat interval; control_leader names the active one.
CREATE TABLE control_instance (
    instance_id    text PRIMARY KEY CHECK (instance_id <> ''),
    pid            integer,
    version        text,
    bind           text,
    started_at     timestamptz NOT NULL DEFAULT now(),
    last_heartbeat timestamptz NOT NULL DEFAULT now()
);
