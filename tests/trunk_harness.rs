//! Self-test of the scripted trunk (`tests/support/trunk.rs`).

mod support;

#[test]
fn placeholder() {}
