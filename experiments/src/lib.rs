//! Shared code of the experiment binaries.

mod error;
pub mod idx;

pub use error::{Error, Result};
