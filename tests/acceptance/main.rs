//! Acceptance tests (harness being written).
