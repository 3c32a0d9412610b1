-- Free text in the stored form every backend accepts (keep in step with
-- ../sqlite/0002_escaped_text.sql). From this version on, the journal writes the columns below
-- escaped: a backslash as `\\`, U+0000 as `\u0000` (PostgreSQL's text refuses U+0000, which a
-- provider's answer can hold). Rows written before are brought to the same form here: their
-- backslashes are doubled, so that every row reads back exactly. (chr(92) is a backslash,
-- whatever standard_conforming_strings says.)
UPDATE refund_journal_entries SET
    provider_refund_id = replace(provider_refund_id, chr(92), chr(92) || chr(92)),
    lease_owner        = replace(lease_owner, chr(92), chr(92) || chr(92)),
    error_kind         = replace(error_kind, chr(92), chr(92) || chr(92)),
    error_message      = replace(error_message, chr(92), chr(92) || chr(92)),
    unresolved_reason  = replace(unresolved_reason, chr(92), chr(92) || chr(92))
WHERE strpos(provider_refund_id, chr(92)) > 0
   OR strpos(lease_owner, chr(92)) > 0
   OR strpos(error_kind, chr(92)) > 0
   OR strpos(error_message, chr(92)) > 0
   OR strpos(unresolved_reason, chr(92)) > 0;

UPDATE refund_journal_events SET
    owner      = replace(owner, chr(92), chr(92) || chr(92)),
    error_kind = replace(error_kind, chr(92), chr(92) || chr(92)),
    detail     = replace(detail, chr(92), chr(92) || chr(92))
WHERE strpos(owner, chr(92)) > 0
   OR strpos(error_kind, chr(92)) > 0
   OR strpos(detail, chr(92)) > 0;
