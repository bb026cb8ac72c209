-- 011 query: indexes for control's subscriber and bill queries (docs/control.md
-- "subscriber.find", "subscriber.timeline", "bill.show"). bill's keys lead
-- with period, so without these a subscriber's bills, or a bill by its id
-- alone, are a scan of every partition. bill_id comes from one sequence and
-- is unique across periods.
CREATE INDEX bill_subscriber ON bill (subscriber_id, period);
CREATE INDEX bill_bill_id ON bill (bill_id);
