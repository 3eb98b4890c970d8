//! Parrot conformance suite.
