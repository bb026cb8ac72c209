-- 004 control: commands (G6: command_id is the primary key, stored before
-- anything is forwarded), their application by services, and the audit log.

CREATE TABLE command (
    command_id   text  PRIMARY KEY CHECK (command_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
    client       text  NOT NULL,       -- key name of the caller
    target       text  NOT NULL CHECK (target IN ('settle', 'notify', 'control')),
    verb         text  NOT NULL,
    args         jsonb NOT NULL DEFAULT '{}',
    state        text  NOT NULL DEFAULT 'RECEIVED'
                 CHECK (state IN ('RECEIVED', 'FORWARDED', 'DONE', 'FAILED', 'REJECTED')),
    result       jsonb,
    error        text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    forwarded_at timestamptz,
    completed_at timestamptz
);
CREATE INDEX command_open ON command (target, received_at) WHERE state IN ('RECEIVED', 'FORWARDED');

-- Written by the target service in the same transaction as the command's
-- effect, so a command redelivered after a crash is recognised and not
-- executed again.
CREATE TABLE applied_command (
    command_id text  PRIMARY KEY REFERENCES command (command_id),
    service    text  NOT NULL,
    status     text  NOT NULL CHECK (status IN ('DONE', 'FAILED')),
    result     jsonb,
    error      text,
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,          -- key name, or 'unknown' for refused keys
    command_id text,
    target     text,
    verb       text,
    args       jsonb,
    outcome    text NOT NULL,
    detail     text
);
CREATE INDEX audit_log_at ON audit_log (at);
