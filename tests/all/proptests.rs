//! proptests tests.
