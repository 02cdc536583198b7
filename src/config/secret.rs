//! Secret files named by the configuration (a trunk's `password_file` today): the one reading
//! rule and a value that cannot leak through `Debug` or `Display`.
//!
//! The rule is the daemon's existing one for the API token and the webhook secret: the whole
//! file, trailing ASCII whitespace (the editor's newline) dropped. A password must also be
//! UTF-8 (digest hashes it as text) and not empty (an empty file is a mistake, not a
//! password). Must not run while parsing (`--check-config` runs where secrets are not), put a
//! secret's bytes into an error, or log.

use std::fmt;
use std::path::{Path, PathBuf};

use super::types::Outbound;
use crate::core::sip::auth::Credentials;

/// A secret read from a file. `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself: hand it only to what needs it (digest), never to a log or error.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a secret file gave no secret; names the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not UTF-8 text", path.display())]
    NotText { path: PathBuf },
    #[error("{} is empty", path.display())]
    Empty { path: PathBuf },
}

/// Reads a secret file by the rule above.
pub fn read_secret_file(path: &Path) -> Result<Secret, SecretError> {
    let bytes = std::fs::read(path).map_err(|source| SecretError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = std::str::from_utf8(bytes.trim_ascii_end()).map_err(|_| SecretError::NotText {
        path: path.to_path_buf(),
    })?;
    if text.is_empty() {
        return Err(SecretError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(Secret(text.to_string()))
}

impl Outbound {
    /// The digest credentials of this trunk (`auth_username` and the password file), read now:
    /// call it when the trunk is (re)built, so a reload picks up a changed password. `None` →
    /// no `password_file`: requests go unauthenticated (a challenge then fails the call).
    pub fn read_credentials(&self) -> Result<Option<Credentials>, SecretError> {
        let Some(path) = &self.password_file else {
            return Ok(None);
        };
        let password = read_secret_file(path)?;
        Ok(Some(Credentials::new(
            self.auth_username.clone(),
            password.expose(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, content: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("trunkgate-secret-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, content) {
            panic!("{}: {e}", path.display());
        }
        path
    }

    #[test]
    fn reads_trimmed_and_never_shows_it() {
        let path = temp("ok", b"s3cr\xc3\xa9t \n\n");
        let secret = read_secret_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(secret.expose(), "s3cr\u{e9}t");
        assert_eq!(
            format!("{secret:?} {secret}"),
            "Secret(<redacted>) <redacted>"
        );
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn errors_name_the_file_only() {
        let empty = temp("empty", b" \n");
        let binary = temp("binary", b"pass\xff");
        let missing = empty.with_file_name("missing");
        for (path, want) in [
            (&empty, "is empty"),
            (&binary, "is not UTF-8 text"),
            (&missing, "cannot read"),
        ] {
            let msg = read_secret_file(path).err().map(|e| e.to_string());
            let msg = msg.unwrap_or_default();
            assert!(msg.contains(want), "{msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(!msg.contains("pass"), "{msg}");
        }
        let _ = std::fs::remove_file(empty);
        let _ = std::fs::remove_file(binary);
    }
}
