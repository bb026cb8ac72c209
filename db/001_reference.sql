-- 001 reference data: plans, add-ons, subscribers and what they subscribe to,
-- and the per-period facts (usage, charges, arrears) that settle rates.
-- Money is integer won; unit prices integer milli-won (billing-rules.md).
-- Ranges are half-open [valid_from, valid_to); valid_to NULL = open-ended.

CREATE DOMAIN bf_code AS text CHECK (VALUE ~ '^[A-Za-z0-9_-]{1,32}$');

CREATE TABLE plan (
    code            bf_code PRIMARY KEY,
    name            text    NOT NULL CHECK (name <> ''),
    monthly_fee     bigint  NOT NULL CHECK (monthly_fee >= 0),
    data_mb         bigint  CHECK (data_mb >= 0),        -- NULL = unlimited
    voice_min       bigint  CHECK (voice_min >= 0),      -- NULL = unlimited
    sms             bigint  CHECK (sms >= 0),            -- NULL = unlimited
    data_rate_mwon  bigint  NOT NULL CHECK (data_rate_mwon >= 0),   -- per MB
    voice_rate_mwon bigint  NOT NULL CHECK (voice_rate_mwon >= 0),  -- per second
    sms_rate_mwon   bigint  NOT NULL CHECK (sms_rate_mwon >= 0)     -- per message
);

CREATE TABLE addon (
    code        bf_code PRIMARY KEY,
    name        text    NOT NULL CHECK (name <> ''),
    monthly_fee bigint  NOT NULL CHECK (monthly_fee >= 0)
);

-- Contacts are sealed with bf_pii (XChaCha20-Poly1305, bound to column and id);
-- *_hash is a keyed BLAKE2b of the normalised value for lookups.
CREATE TABLE subscriber (
    id             bigint   PRIMARY KEY CHECK (id > 0),
    name           text     NOT NULL CHECK (name <> ''),
    email_enc      bytea,
    email_hash     bytea    CHECK (octet_length(email_hash) = 32),
    phone_enc      bytea    NOT NULL,
    phone_hash     bytea    NOT NULL CHECK (octet_length(phone_hash) = 32),
    push_token_enc bytea,
    activated_on   date     NOT NULL,
    terminated_on  date,
    customer_since date     NOT NULL,
    family_id      bigint   CHECK (family_id > 0),
    welfare_grade  text     CHECK (welfare_grade IN ('DISABLED', 'LOW_INCOME', 'SENIOR')),
    pay_day        smallint NOT NULL CHECK (pay_day IN (5, 10, 15, 20, 25)),
    channels       text[]   NOT NULL
                   CHECK (cardinality(channels) BETWEEN 1 AND 3
                          AND channels <@ ARRAY['EMAIL', 'SMS', 'PUSH']),
    quiet_start    time,
    quiet_end      time,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (terminated_on IS NULL OR terminated_on > activated_on),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL)),
    CHECK ((email_enc IS NULL) = (email_hash IS NULL)),
    CHECK (NOT 'EMAIL' = ANY (channels) OR email_enc IS NOT NULL),
    CHECK (NOT 'PUSH' = ANY (channels) OR push_token_enc IS NOT NULL)
);
CREATE INDEX subscriber_family ON subscriber (family_id) WHERE family_id IS NOT NULL;
-- Lookups by contact are equality only: hash indexes are a third smaller than
-- B-trees on random 32-byte keys and cost less to maintain on bulk loads.
CREATE INDEX subscriber_email_hash ON subscriber USING hash (email_hash)
    WHERE email_hash IS NOT NULL;
CREATE INDEX subscriber_phone_hash ON subscriber USING hash (phone_hash);

-- plan_code and addon_code carry no foreign key: on a bulk load every row's
-- check locks one of a dozen plan rows (1.1M assignments: 11.4 s with the key,
-- 6.3 s without). The importer accepts only codes that exist, and settle
-- records an assignment to an unknown plan as a rating error.
CREATE TABLE plan_assignment (
    subscriber_id bigint  NOT NULL REFERENCES subscriber (id) ON DELETE CASCADE,
    plan_code     bf_code NOT NULL,
    valid_from    date    NOT NULL,
    valid_to      date    CHECK (valid_to > valid_from),
    PRIMARY KEY (subscriber_id, valid_from)
);

CREATE TABLE addon_subscription (
    subscriber_id bigint  NOT NULL REFERENCES subscriber (id) ON DELETE CASCADE,
    addon_code    bf_code NOT NULL,
    valid_from    date    NOT NULL,
    valid_to      date    CHECK (valid_to > valid_from),
    PRIMARY KEY (subscriber_id, addon_code, valid_from)
);

CREATE TABLE contract (
    subscriber_id bigint NOT NULL REFERENCES subscriber (id) ON DELETE CASCADE,
    kind          text   NOT NULL CHECK (kind IN ('SELECTIVE_25')),
    valid_from    date   NOT NULL,
    valid_to      date   CHECK (valid_to > valid_from),
    PRIMARY KEY (subscriber_id, kind, valid_from)
);

-- Per-period facts are partitioned by period (LIST, one partition a month,
-- created by bf_ensure_period): a month's rating reads one partition, and old
-- months can be detached and archived whole. These two tables hold ~5 rows per
-- subscriber a month and carry no foreign key: a per-row RI check costs more
-- than the COPY itself (3.5M usage rows: 9 s without, 24 s with). Their
-- references are enforced by the only writer, `billdata import`, which accepts
-- a fact row only for a subscriber of the same import (docs/data-format.md).
CREATE TABLE usage_record (
    period        text   NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    subscriber_id bigint NOT NULL,
    kind          text   NOT NULL CHECK (kind IN ('DATA_MB', 'VOICE_SEC', 'SMS')),
    quantity      bigint NOT NULL CHECK (quantity >= 0)
) PARTITION BY LIST (period);
CREATE INDEX usage_record_subscriber ON usage_record (period, subscriber_id);

-- seq orders a subscriber's charges of a period as in the imported file
-- (billing-rules.md step 6: "in row order").
CREATE TABLE charge (
    period        text    NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    subscriber_id bigint  NOT NULL,
    seq           integer NOT NULL CHECK (seq > 0),
    kind          text    NOT NULL
                  CHECK (kind IN ('DEVICE_INSTALLMENT', 'MICRO_PAYMENT', 'CONTENT', 'ADJUSTMENT')),
    amount        bigint  NOT NULL,
    taxable       boolean NOT NULL,
    PRIMARY KEY (period, subscriber_id, seq),
    CHECK (amount >= 0 OR kind = 'ADJUSTMENT'),
    CHECK (taxable = (kind IN ('CONTENT', 'ADJUSTMENT')))
) PARTITION BY LIST (period);

CREATE TABLE arrears (
    subscriber_id bigint NOT NULL REFERENCES subscriber (id) ON DELETE CASCADE,
    period        text   NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    amount        bigint NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (period, subscriber_id)
);
