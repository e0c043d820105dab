//! Criterion benchmarks live in `benches/benches/`; this library has no items.
