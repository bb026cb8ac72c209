-- 009 possibly delivered email (docs/notify.md "Possibly delivered"):
-- an SMTP attempt whose whole message was sent but whose final reply never
-- came (end-of-data timeout, connection lost) is recorded with its own
-- outcome, UNKNOWN, so the report can count it as a possible duplicate and
-- the dispatcher never falls back to SMS or retries it fast.
ALTER TABLE delivery_attempt DROP CONSTRAINT delivery_attempt_outcome_check;
ALTER TABLE delivery_attempt ADD CONSTRAINT delivery_attempt_outcome_check
    CHECK (outcome IN ('DELIVERED', 'DUPLICATE', 'TRANSIENT', 'PERMANENT', 'THROTTLED',
                       'UNKNOWN'));

-- A dispatcher renews the leases of the deliveries it holds while their
-- sends are in flight (an email may wait 10 minutes for its final reply);
-- this finds them without reading the whole due queue.
CREATE INDEX delivery_lease ON delivery (lease_owner) WHERE state = 'SENDING';
