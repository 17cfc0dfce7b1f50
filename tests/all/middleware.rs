//! middleware tests.
