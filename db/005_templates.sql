-- 005 templates: the default bill notice (purpose BILL_ISSUED, version 1),
-- one active row per channel. The template language, its variables and the
-- SMS/LMS rule are in docs/templates.md; tests/unit/test_template.c renders
-- these very rows. A new wording is a new version (insert, then flip active);
-- rows that have been sent are never edited, so template_version on a
-- delivery always names the text that went out.

INSERT INTO template (channel, purpose, version, subject, body, body_html, short_body, active)
VALUES
('EMAIL', 'BILL_ISSUED', 1,
'[빌플로우] {{period_label}} 이용요금 안내',
'{{#name}}{{name}} 고객님{{/name}}{{^name}}고객님{{/name}}, 안녕하세요.
빌플로우를 이용해 주셔서 감사합니다.
{{period_label}} 이용요금을 아래와 같이 안내해 드립니다.

■ 청구 요약
  청구금액: {{total}}원
  납부기한: {{due_label}}({{due_date}})
  청구번호: {{bill_id}}

■ 청구 내역
{{#lines}}  {{label}}: {{amount}}원
{{/lines}}{{^lines}}  이번 달 청구 내역이 없습니다.
{{/lines}}  ----------------------------------------
  청구금액 합계: {{total}}원

※ 할인·절사 금액은 -(마이너스)로 표시됩니다.
※ 납부기한까지 납부되지 않은 금액은 다음 달 청구서에 미납 요금으로 함께 청구됩니다.
※ 요금 문의: 빌플로우 고객센터 114 (휴대폰에서 무료)

본 메일은 발신 전용입니다.
',
'<!DOCTYPE html>
<html lang="ko">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>[빌플로우] {{period_label}} 이용요금 안내</title>
</head>
<body style="margin:0;padding:0;background-color:#f4f5f7;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background-color:#f4f5f7;">
<tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" style="width:100%;max-width:600px;background-color:#ffffff;border:1px solid #e1e4e8;font-family:Apple SD Gothic Neo,Malgun Gothic,sans-serif;font-size:14px;line-height:1.6;color:#222222;">
<tr><td style="padding:20px 24px;background-color:#1a4fa0;color:#ffffff;">
<div style="font-size:13px;">빌플로우</div>
<div style="font-size:20px;font-weight:bold;">{{period_label}} 이용요금 안내</div>
</td></tr>
<tr><td style="padding:24px;">
<p style="margin:0 0 16px;">{{#name}}{{name}} 고객님{{/name}}{{^name}}고객님{{/name}}, 안녕하세요.<br>
빌플로우를 이용해 주셔서 감사합니다. {{period_label}} 이용요금을 아래와 같이 안내해 드립니다.</p>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background-color:#f7f9fc;border:1px solid #e1e4e8;">
<tr><td style="padding:16px;">
<div style="font-size:13px;color:#555555;">청구금액</div>
<div style="font-size:26px;font-weight:bold;color:#1a4fa0;">{{total}}원</div>
<div style="font-size:13px;color:#555555;">납부기한 {{due_label}}({{due_date}}) · 청구번호 {{bill_id}}</div>
</td></tr>
</table>
<h2 style="font-size:16px;margin:24px 0 8px;">청구 내역</h2>
<table width="100%" cellpadding="0" cellspacing="0" border="0" style="border-collapse:collapse;font-size:14px;">
<thead>
<tr><th align="left" style="padding:8px;border-bottom:2px solid #222222;">항목</th><th align="right" style="padding:8px;border-bottom:2px solid #222222;">금액(원)</th></tr>
</thead>
<tbody>
{{#lines}}<tr><td style="padding:8px;border-bottom:1px solid #e1e4e8;">{{label}}</td><td align="right" style="padding:8px;border-bottom:1px solid #e1e4e8;">{{amount}}</td></tr>
{{/lines}}{{^lines}}<tr><td colspan="2" style="padding:8px;border-bottom:1px solid #e1e4e8;color:#555555;">이번 달 청구 내역이 없습니다.</td></tr>
{{/lines}}</tbody>
<tfoot>
<tr><th align="left" style="padding:8px;border-top:2px solid #222222;">청구금액 합계</th><th align="right" style="padding:8px;border-top:2px solid #222222;">{{total}}</th></tr>
</tfoot>
</table>
<p style="margin:16px 0 0;font-size:12px;color:#555555;">※ 할인·절사 금액은 -(마이너스)로 표시됩니다.<br>
※ 납부기한까지 납부되지 않은 금액은 다음 달 청구서에 미납 요금으로 함께 청구됩니다.<br>
※ 요금 문의: 빌플로우 고객센터 114 (휴대폰에서 무료)</p>
</td></tr>
<tr><td style="padding:16px 24px;background-color:#f4f5f7;font-size:12px;color:#888888;">본 메일은 발신 전용입니다.</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
',
NULL,
true),

('SMS', 'BILL_ISSUED', 1,
'[빌플로우] {{period_label}} 이용요금 안내',
'[빌플로우] {{period_label}} 이용요금 안내

{{#name}}{{name}} {{/name}}고객님, {{period_label}} 이용요금을 안내해 드립니다.

청구금액: {{total}}원
납부기한: {{due_label}}

[청구 내역]
{{#lines}}{{label}} {{amount}}원
{{/lines}}{{^lines}}청구 내역 없음
{{/lines}}
※ 할인 금액은 -로 표시됩니다.
자세한 내역은 이메일 청구서나 빌플로우 앱에서 확인하실 수 있습니다.
문의: 고객센터 114(무료)',
NULL,
'[빌플로우] {{month_label}} 요금 {{total}}원, 납기 {{due_short}}',
true),

('PUSH', 'BILL_ISSUED', 1,
'{{period_label}} 이용요금 안내',
'{{#name}}{{name}} {{/name}}고객님, {{period_label}} 청구금액은 {{total}}원입니다. 납부기한은 {{due_label}}입니다.',
NULL,
NULL,
true);
