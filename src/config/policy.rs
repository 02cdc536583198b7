//! Admission-policy settings as seen by the configuration: the layered types themselves live in
//! `core::policy::settings` (core never imports config; config assembles core's types).
//!
//! Owns nothing but the re-export, so `config::policy::X` paths used by the validators keep
//! working. Validation of the values (CIDRs, prefixes, hours, fraud URL) stays in
//! `validate_routes`; must not add admission logic here.

pub use crate::core::policy::settings::*;
