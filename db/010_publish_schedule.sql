-- 010 template publishing and scheduled release (docs/templates.md
-- "Publishing", docs/notify.md "Scheduled release").
--
-- template.published_by: the command_id of the template.publish command
-- that created the version (NULL for the shipped defaults); the key name
-- that sent it is in command.client and the audit log.
ALTER TABLE template ADD COLUMN published_by text;

-- run_schedule: "send this run's notices from release_at". One row per
-- scheduled run; run.unschedule deletes it. The dispatcher's claim skips a
-- delivery whose bill belongs to a run with a release still ahead. period
-- is the run's, copied so that the claim's check is a probe of this tiny
-- table by the delivery's own period before any bill is looked at.
CREATE TABLE run_schedule (
    run_id     bigint PRIMARY KEY REFERENCES settlement_run (run_id),
    period     text   NOT NULL,
    release_at timestamptz NOT NULL,
    at_local   text   NOT NULL,          -- as the operator gave it: YYYY-MM-DDTHH:MM
    command_id text   NOT NULL,          -- the run.schedule command that set it
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_schedule_period ON run_schedule (period);
