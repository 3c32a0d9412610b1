//! The stored form of free text: what a provider sent (a refund id, an error message with a
//! body excerpt) and other text the journal does not choose from a fixed list.
//!
//! PostgreSQL's `text` refuses U+0000 (a NUL in a provider's JSON string, or in the excerpt of
//! a compressed body nobody decoded); SQLite takes it. So that one value is stored alike on
//! both backends and read back exactly, such text is escaped on the way in: a backslash is
//! written `\\` and U+0000 is written `\u0000`; nothing else changes. Reading undoes exactly
//! that. A backslash followed by anything else (never written by the journal) reads as itself,
//! as does a raw U+0000 an earlier version left in a SQLite file.

use std::borrow::Cow;

/// The stored form of `text`: `\` as `\\`, U+0000 as `\u0000`.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['\\', '\0']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\u0000"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The text whose stored form is `stored` (the inverse of [`escape`]).
pub(crate) fn unescape(stored: String) -> String {
    if !stored.contains('\\') {
        return stored;
    }
    let mut out = String::with_capacity(stored.len());
    let mut rest = stored.as_str();
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("\\\\") {
            out.push('\\');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("\\u0000") {
            out.push('\0');
            rest = after;
        } else {
            out.push('\\');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// [`escape`] of an optional column.
pub(crate) fn escape_opt(text: Option<&str>) -> Option<Cow<'_, str>> {
    text.map(escape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_backslash_are_escaped_and_nothing_else() {
        assert_eq!(escape("plain text, ünïcödé"), "plain text, ünïcödé");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(escape("a\0b"), r"a\u0000b");
        assert_eq!(escape(r"C:\dir"), r"C:\\dir");
        assert_eq!(escape("\\u0000"), r"\\u0000");
        assert_eq!(escape("\0\\\0"), r"\u0000\\\u0000");
        assert!(!escape("\0\0").contains('\0'));
    }

    #[test]
    fn unescape_reverses_escape_exactly() {
        for text in [
            "",
            "plain",
            "\0",
            "\\",
            "\\\\",
            "\\u0000",
            "\\\0",
            "\0\\u0000\\",
            "end\\",
            "RN\0 \\u0000 \\",
            "\u{fffd}\u{1f}\0\u{7f}é",
        ] {
            assert_eq!(unescape(escape(text).into_owned()), text, "{text:?}");
        }
    }

    #[test]
    fn what_the_journal_never_writes_reads_as_itself() {
        // A lone backslash (hand-edited, or an earlier version's row) and a raw NUL.
        assert_eq!(unescape(r"a\nb".to_owned()), r"a\nb");
        assert_eq!(unescape(r"a\u0001".to_owned()), r"a\u0001");
        assert_eq!(unescape("tail\\".to_owned()), "tail\\");
        assert_eq!(unescape("raw\0nul".to_owned()), "raw\0nul");
    }
}
