//! One integration binary (faster to link than one per file); each module is one concern.

mod attacks;
mod cli;
mod corpus;
#[cfg(unix)]
mod fork;
mod middleware;
mod proptests;
mod rotation;
mod siblings;
mod support;
mod vectors;
mod wycheproof;
