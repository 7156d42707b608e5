//! A local Matrix network for the demo and the end-to-end tests: real Synapse
//! homeservers on loopback, real accounts, real encrypted rooms.
//!
//! Owns: installing and running Synapse, registering users, the demo. Must not touch the
//! core. Only ever binds and connects to 127.0.0.1.

pub mod bot;
pub mod client;
pub mod demo;
pub mod measure;
pub mod probe;
pub mod proxy;
pub mod synapse;
