-- 012 report: partial indexes for control's run.report (docs/control.md
-- "run.report", services/control/bf_report.c). Each holds only the rows the
-- report looks for, so the report reads them instead of every notice or
-- every attempt:
--   delivery_notified        notices that notify their bill by themselves
--                            (DELIVERED or HELD), read index-only to find the
--                            bills that have none;
--   delivery_fallback_ended  SMS fallbacks that ended FAILED or CANCELLED (the
--                            other way a bill counts as notified);
--   delivery_attempt_unknown attempts whose outcome is UNKNOWN (possibly
--                            delivered), instead of a scan of every attempt of
--                            every period.
CREATE INDEX delivery_notified ON delivery (period, bill_id)
    WHERE state IN ('DELIVERED', 'HELD');
CREATE INDEX delivery_fallback_ended ON delivery (period, bill_id)
    WHERE fallback_of IS NOT NULL AND state IN ('FAILED', 'CANCELLED');
CREATE INDEX delivery_attempt_unknown ON delivery_attempt (delivery_id)
    WHERE outcome = 'UNKNOWN';
