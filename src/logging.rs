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

/// Whether a panic is matrix-sdk 0.18's room-key assertion ("Session expired", in
/// matrix-sdk-crypto's group session manager): two sends encrypting for one room at
/// once, the other having used up the room key's last message. The sender expects it,
/// catches it and sends again (see `matrix::sender`).
pub fn is_room_key_race(message: Option<&str>, file: Option<&str>) -> bool {
    message == Some("Session expired") && file.is_some_and(|f| f.contains("matrix-sdk-crypto"))
}

/// Installs a panic hook that keeps the default report (message, location, backtrace)
/// for every panic but the expected room-key race, which is logged at debug level.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        if is_room_key_race(message, info.location().map(|l| l.file())) {
            tracing::debug!("a send raced a room-key rotation inside matrix-sdk; it is sent again");
        } else {
            default(info);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_sdk_room_key_assertion_counts_as_the_known_race() {
        let crypto = "/root/.cargo/registry/src/x/matrix-sdk-crypto-0.18.0/src/session_manager/group_sessions/mod.rs";
        assert!(is_room_key_race(Some("Session expired"), Some(crypto)));
        assert!(!is_room_key_race(
            Some("Session expired"),
            Some("src/matrix/outbound.rs")
        ));
        assert!(!is_room_key_race(Some("index out of bounds"), Some(crypto)));
        assert!(!is_room_key_race(None, Some(crypto)));
        assert!(!is_room_key_race(Some("Session expired"), None));
    }

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
