//! One integration binary (faster to link than one per file); each module is one concern.

mod attacks;
mod corpus;
mod middleware;
mod proptests;
mod rotation;
mod support;
mod tossing;
mod typed_values;
mod vectors;
mod wycheproof;
