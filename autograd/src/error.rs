//! The error type of the crate.

use crate::shape::Shape;

/// Every way an autograd call can fail on user input.
///
/// Each variant names the op, so that a message read far from the call site still shows where it
/// came from, and the offending shapes or values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Shapes that the op cannot combine.
    #[error("{op}: {message}")]
    Shape {
        /// The op that rejected the shapes.
        op: String,
        /// The problem, with the shapes involved.
        message: String,
    },
    /// An argument outside the op's domain (a negative axis length, a temperature of zero, ...).
    #[error("{op}: invalid {arg} = {value}: {hint}")]
    InvalidArgument {
        /// The op that rejected the argument.
        op: String,
        /// The argument's name.
        arg: String,
        /// The rejected value, formatted.
        value: String,
        /// The values the op accepts instead.
        hint: String,
    },
    /// Handles of two different tapes were combined.
    #[error("{op}: the operands belong to different tapes; create every value of one computation on the same Tape")]
    TapeMismatch {
        /// The call that saw the mismatch.
        op: String,
    },
    /// `backward` was called on a value with more than one element.
    #[error("backward: the loss must be a scalar (one element), got shape {shape}; reduce it first, for example with sum() or mean()")]
    NotScalar {
        /// The shape of the value `backward` was called on.
        shape: Shape,
    },
    /// A gradient was requested for a value that does not take part in differentiation.
    #[error("grad: {what}")]
    NoGradient {
        /// The reason no gradient exists.
        what: String,
    },
    /// A tracked input reached an op that has no backward.
    #[error("{op}: this op has no backward, but input {input} requires a gradient; detach() the input or compute it inside no_grad()")]
    NotDifferentiable {
        /// The op without a backward.
        op: String,
        /// The position of the tracked input.
        input: usize,
    },
    /// Reading or writing a checkpoint failed.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: String,
        /// The cause of the failure.
        message: String,
    },
}

impl Error {
    /// Builds an [`Error::Shape`].
    pub fn shape(op: &str, message: impl Into<String>) -> Self {
        Error::Shape {
            op: op.to_string(),
            message: message.into(),
        }
    }

    /// Builds an [`Error::InvalidArgument`].
    pub fn invalid(
        op: &str,
        arg: &str,
        value: impl std::fmt::Display,
        hint: impl Into<String>,
    ) -> Self {
        Error::InvalidArgument {
            op: op.to_string(),
            arg: arg.to_string(),
            value: value.to_string(),
            hint: hint.into(),
        }
    }
}

/// The result type of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
