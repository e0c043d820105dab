//! Shared code of the experiment binaries.
