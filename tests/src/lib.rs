//! Support for vault's end-to-end tests: private database servers and helpers
//! to drive the real binary.

pub mod servers;
