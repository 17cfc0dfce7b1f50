//! vectors tests.
