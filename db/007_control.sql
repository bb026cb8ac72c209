-- 007 control: the service instances control has seen, the active control
-- process, and the bookkeeping control keeps on each command.

-- One row per service process that registered or heartbeated; control
-- writes it on registration and on heartbeats (at most every few seconds).
-- A service is "up" while its last heartbeat is younger than three
-- heartbeat intervals.
CREATE TABLE service_instance (
    instance_id    text PRIMARY KEY CHECK (instance_id <> ''),
    service        text NOT NULL CHECK (service IN ('settle', 'notify')),
    key_name       text,                 -- the CURVE key it connected with
    pid            integer,
    version        text,
    verbs          text[] NOT NULL DEFAULT '{}',
    registered_at  timestamptz NOT NULL DEFAULT now(),
    last_heartbeat timestamptz NOT NULL DEFAULT now(),
    state          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX service_instance_service ON service_instance (service, last_heartbeat DESC);

-- Which control process is active. The election itself is a session-level
-- advisory lock held on the active control's connection (released by
-- PostgreSQL when that process or its connection dies); this row only tells
-- operators who holds it.
CREATE TABLE control_leader (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    instance_id text,
    bind        text,
    since       timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO control_leader DEFAULT VALUES;

-- How often control forwarded a command, and to which instance last.
ALTER TABLE command ADD COLUMN forwards integer NOT NULL DEFAULT 0 CHECK (forwards >= 0);
ALTER TABLE command ADD COLUMN instance_id text;
CREATE INDEX command_received ON command (received_at DESC);
CREATE INDEX audit_log_command ON audit_log (command_id) WHERE command_id IS NOT NULL;
