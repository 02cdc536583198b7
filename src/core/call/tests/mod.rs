//! Scenario tests of the call machine with a virtual clock.
