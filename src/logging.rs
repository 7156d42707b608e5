//! Privacy for logs: every log line passes through [`Redacting`], which replaces Matrix
//! user IDs with `@…`, whatever crate wrote the line. Our own code never logs message
//! bodies or user IDs; this also covers what dependencies log.

use std::io::{self, Write};
use std::sync::LazyLock;

use regex::bytes::Regex;

static USER_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"@[A-Za-z0-9._=/+\-]+:[A-Za-z0-9.\-\[\]]+(?::[0-9]+)?").expect("static regex")
});

/// Replaces Matrix user IDs in `text` with `@…`.
pub fn redact(text: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    USER_ID.replace_all(text, &b"@\xE2\x80\xA6"[..])
}

/// A writer that redacts user IDs before passing text on.
#[derive(Debug)]
pub struct Redacting<W>(pub W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&redact(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_redacted_and_room_ids_kept() {
        let line = br#"join room_id="!abc:example.org" inviter="@maria:oakland.example" bot=@neighborwatch:localhost:38413 uri=/user/@x_y.z:hs/account"#;
        let out = String::from_utf8(redact(line).into_owned()).unwrap();
        assert!(
            !out.contains("maria") && !out.contains("neighborwatch:") && !out.contains("x_y.z"),
            "{out}"
        );
        assert!(out.contains("!abc:example.org"));
        assert_eq!(out.matches("@…").count(), 3, "{out}");
    }
}
