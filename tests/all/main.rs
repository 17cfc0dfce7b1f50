//! One integration binary (faster to link than one per file); each module is one concern.

mod attacks;
mod corpus;
#[cfg(unix)]
mod fork;
mod middleware;
mod proptests;
mod revocation;
mod rotation;
mod siblings;
mod support;
mod tossing;
mod typed_values;
mod vectors;
mod wycheproof;
