//! The configuration error: every problem found in one file, each with its key path and line.
//!
//! Owns the rendering operators see (`<origin>:<line>: <key.path>: <message>`, one line per
//! problem). Must not stop at the first problem: the parser and the validator push into one
//! list so that a single `--check-config` run shows everything to fix.

use std::fmt;
use std::ops::Range;

/// One thing wrong with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the offending key or value; `None` when the problem is about a default
    /// (the key is absent from the file) or the file as a whole.
    pub line: Option<usize>,
    /// Dotted key path such as `trunk[0].policy.allow_cidrs[2]`; empty for file-level problems
    /// (unreadable file, TOML syntax).
    pub path: String,
    pub message: String,
}

/// All problems found in one configuration file, in file order where lines are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name (or another label) prefixed to every line.
    pub origin: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&self.origin)?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
            }
            f.write_str(": ")?;
            if !p.path.is_empty() {
                write!(f, "{}: ", p.path)?;
            }
            f.write_str(&p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Collects problems while the text is at hand, so byte spans become line numbers.
pub(crate) struct Problems<'t> {
    text: &'t str,
    list: Vec<Problem>,
}

impl<'t> Problems<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        Problems {
            text,
            list: Vec::new(),
        }
    }

    pub(crate) fn push(
        &mut self,
        path: impl Into<String>,
        span: &Option<Range<usize>>,
        message: impl Into<String>,
    ) {
        let line = span.as_ref().map(|s| line_of(self.text, s.start));
        self.list.push(Problem {
            line,
            path: path.into(),
            message: message.into(),
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Problems sorted by line (unlined ones, about defaults, last), ties kept in push order.
    pub(crate) fn into_error(mut self, origin: &str) -> ConfigError {
        self.list.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        ConfigError {
            origin: origin.to_string(),
            problems: self.list,
        }
    }
}

/// 1-based line containing byte `offset`; offsets past the end count as the last line.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_line_per_problem() {
        let mut p = Problems::new("a\nb\nc");
        p.push("sip.x", &Some(4..5), "bad");
        p.push("", &None, "file-level");
        p.push("rtp.y", &Some(0..1), "worse");
        let e = p.into_error("etc/x.toml");
        assert_eq!(
            e.to_string(),
            "etc/x.toml:1: rtp.y: worse\netc/x.toml:3: sip.x: bad\netc/x.toml: file-level"
        );
    }

    #[test]
    fn line_of_clamps() {
        assert_eq!(line_of("a\nb", 0), 1);
        assert_eq!(line_of("a\nb", 2), 2);
        assert_eq!(line_of("a\nb", 99), 2);
    }
}
