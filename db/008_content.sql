-- 008 content: what a statement shows is part of the bill, and what a notice
-- sent is kept with it.
--
-- bill_line.label: the words a statement shows for the line, written by
-- settle with the line (the plan and add-on names of the catalogue at
-- settlement time; the fixed labels of docs/templates.md for the other
-- codes). Notices, billdata export-bills and the console all show this
-- label, so a renamed plan does not change a settled bill, and a notice
-- does not depend on the age of a cache.
--
-- Existing lines are backfilled here with the same rule and today's
-- catalogue names (the best record there is of the names at settlement
-- time); a code whose plan or add-on is gone gets the generic label that
-- still shows the code, as notices showed it before.
ALTER TABLE bill_line ADD COLUMN label text;

UPDATE bill_line l SET label = CASE
    WHEN l.code = 'OVERAGE_DATA' THEN '데이터 초과 사용료'
    WHEN l.code = 'OVERAGE_VOICE' THEN '음성 초과 사용료'
    WHEN l.code = 'OVERAGE_SMS' THEN '문자 초과 사용료'
    WHEN l.code = 'DISC_CONTRACT' THEN '선택약정 할인'
    WHEN l.code = 'DISC_FAMILY' THEN '가족결합 할인'
    WHEN l.code = 'DISC_LOYALTY' THEN '장기고객 할인'
    WHEN l.code = 'DISC_WELFARE' THEN '복지 할인'
    WHEN l.code = 'CHARGE:DEVICE_INSTALLMENT' THEN '단말기 할부금'
    WHEN l.code = 'CHARGE:MICRO_PAYMENT' THEN '소액결제'
    WHEN l.code = 'CHARGE:CONTENT' THEN '콘텐츠 이용료'
    WHEN l.code = 'CHARGE:ADJUSTMENT' THEN '요금 조정'
    WHEN l.code = 'CREDIT_CARRY' THEN '다음 달 이월 크레딧'
    WHEN l.code = 'VAT' THEN '부가가치세'
    WHEN l.code = 'ARREARS' THEN '미납 요금'
    WHEN l.code = 'ROUNDING' THEN '원 단위 절사'
    WHEN l.code LIKE 'PLAN:_%' THEN coalesce ((SELECT p.name FROM plan p
                                              WHERE p.code = substr (l.code, 6)),
                                             '요금제 (' || substr (l.code, 6) || ')')
    WHEN l.code LIKE 'ADDON:_%' THEN coalesce ((SELECT a.name FROM addon a
                                               WHERE a.code = substr (l.code, 7)),
                                              '부가서비스 (' || substr (l.code, 7) || ')')
    ELSE l.code END;

ALTER TABLE bill_line ALTER COLUMN label SET NOT NULL;
ALTER TABLE bill_line ADD CONSTRAINT bill_line_label_check CHECK (label <> '');

-- delivery_content: the message a delivery sent, kept when the delivery
-- needs another attempt, so every later attempt (a retry, an operator's
-- retry) sends exactly the same bytes under the same Idempotency-Key or
-- Message-ID. The first attempt's content wins (ON CONFLICT DO NOTHING).
-- Not the contact: that stays sealed in subscriber and is opened per send.
-- sent_as is what the first attempt went out as (an SMS delivery may be an
-- SMS or an LMS); date_s is the email Date header's time (0 otherwise).
CREATE TABLE delivery_content (
    delivery_id bigint  PRIMARY KEY REFERENCES delivery (id),
    sent_as     text    NOT NULL CHECK (sent_as IN ('EMAIL', 'SMS', 'LMS', 'PUSH')),
    title       text,
    body        text    NOT NULL,
    body_html   text,
    date_s      bigint  NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);
