-- Free text in the stored form every backend accepts (keep in step with
-- ../postgres/0002_escaped_text.sql). From this version on, the journal writes the columns below
-- escaped: a backslash as `\\`, U+0000 as `\u0000` (PostgreSQL's text refuses U+0000, which a
-- provider's answer can hold). Rows written before are brought to the same form here: their
-- backslashes are doubled, so that every row reads back exactly. (char(92) is a backslash.)
UPDATE refund_journal_entries SET
    provider_refund_id = replace(provider_refund_id, char(92), char(92) || char(92)),
    lease_owner        = replace(lease_owner, char(92), char(92) || char(92)),
    error_kind         = replace(error_kind, char(92), char(92) || char(92)),
    error_message      = replace(error_message, char(92), char(92) || char(92)),
    unresolved_reason  = replace(unresolved_reason, char(92), char(92) || char(92))
WHERE instr(provider_refund_id, char(92)) > 0
   OR instr(lease_owner, char(92)) > 0
   OR instr(error_kind, char(92)) > 0
   OR instr(error_message, char(92)) > 0
   OR instr(unresolved_reason, char(92)) > 0;

UPDATE refund_journal_events SET
    owner      = replace(owner, char(92), char(92) || char(92)),
    error_kind = replace(error_kind, char(92), char(92) || char(92)),
    detail     = replace(detail, char(92), char(92) || char(92))
WHERE instr(owner, char(92)) > 0
   OR instr(error_kind, char(92)) > 0
   OR instr(detail, char(92)) > 0;
