//! `[[user]]`: the phones that register with trunkgate's registrar (`core::sip::registrar`).
//!
//! Owns the user keys' rules: `name` non-empty, of letters, digits, `.`, `_`, `-`, and unique
//! (it is the AOR user and the digest username); `password_file` a non-empty path;
//! `allow_cidrs` CIDRs (empty → any source). Reading the passwords is [`Config::read_users`]'s,
//! by the secret-file rule ([`super::read_secret_file`]): the daemon calls it when it builds
//! the registrar and `--check-config` when it checks the files a configuration names, so a
//! missing, unreadable or empty file is reported as `user[i].password_file: …`. Must not read
//! a file while parsing (`--check-config` parses where the secrets are not) or put a password
//! into an error.

use super::error::Problems;
use super::schema::RawUser;
use super::secret::{read_secret_file, Secret, SecretError};
use super::types::{Config, LoadedUser, UserConfig};
use super::validate::{key, list, parse_cidr, values};

pub(crate) fn users(ctx: &mut Problems<'_>, raw: &[(usize, RawUser)]) -> Vec<UserConfig> {
    let mut out: Vec<(usize, UserConfig)> = Vec::new();
    for (i, u) in raw {
        let prefix = format!("user[{i}]");
        let name = &u.name.value;
        if !is_user_name(name) {
            let msg = format!("{name:?} is not a user name (letters, digits, '.', '_', '-')");
            ctx.push(key(&prefix, "name"), &u.name.span, msg);
        } else if let Some((j, _)) = out.iter().find(|(_, o)| &o.name == name) {
            let msg = format!("{name:?} is already the name of user[{j}]");
            ctx.push(key(&prefix, "name"), &u.name.span, msg);
        }
        if u.password_file.value.is_empty() {
            ctx.push(
                key(&prefix, "password_file"),
                &u.password_file.span,
                "must name the file holding the user's password",
            );
        }
        let allow_cidrs = list(
            ctx,
            &key(&prefix, "allow_cidrs"),
            &u.allow_cidrs,
            parse_cidr,
        )
        .map(values)
        .unwrap_or_default();
        let digest: Vec<String> = list(ctx, &key(&prefix, "digest"), &u.digest, parse_digest)
            .map(values)
            .unwrap_or_default();
        if let Some(list) = &u.digest {
            let mut seen = digest.clone();
            seen.dedup();
            if list.value.is_empty() || seen.len() != digest.len() {
                let msg = "one or both of \"SHA-256\" and \"MD5\", each once";
                ctx.push(key(&prefix, "digest"), &list.span, msg);
            }
        }
        let user = UserConfig {
            name: name.clone(),
            password_file: u.password_file.value.clone().into(),
            allow_cidrs,
            digest,
        };
        out.push((*i, user));
    }
    out.into_iter().map(|(_, u)| u).collect()
}

/// A digest algorithm as RFC 8760 spells it.
fn parse_digest(text: &str) -> Result<String, String> {
    match text.to_ascii_uppercase().as_str() {
        "MD5" => Ok("MD5".into()),
        "SHA-256" => Ok("SHA-256".into()),
        _ => Err(format!(
            "{text:?} is not a digest algorithm (\"SHA-256\", \"MD5\")"
        )),
    }
}

fn is_user_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl UserConfig {
    /// The password, read now by the secret-file rule (whole file, trailing whitespace
    /// dropped, UTF-8, not empty).
    pub fn read_password(&self) -> Result<Secret, SecretError> {
        read_secret_file(&self.password_file)
    }
}

impl Config {
    /// Every `[[user]]` with its password read now: call it when the registrar is (re)built,
    /// so a reload picks up a changed password. `Err`: one line per unusable file,
    /// `user[i].password_file: <why>` (naming the file, never its content).
    pub fn read_users(&self) -> Result<Vec<LoadedUser>, Vec<String>> {
        let mut loaded = Vec::with_capacity(self.users.len());
        let mut problems = Vec::new();
        for (i, u) in self.users.iter().enumerate() {
            match u.read_password() {
                Ok(password) => loaded.push(LoadedUser {
                    name: u.name.clone(),
                    password,
                    allow_cidrs: u.allow_cidrs.clone(),
                    digest: u.digest.clone(),
                }),
                Err(e) => problems.push(format!("user[{i}].password_file: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(loaded)
        } else {
            Err(problems)
        }
    }
}
