//! Differentiable sorting operators.

pub mod fast;
