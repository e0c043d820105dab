//! Differentiable sorting operators.
