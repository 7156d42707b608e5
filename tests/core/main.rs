//! Core tests: parser table, properties, replay fixtures, store contract, network file,
//! undecryptable messages, the verifier lifecycle, relay links.
//! One binary with modules (as in mini-redis and matrix-sdk), no network needed.

mod authority;
mod facts;
mod fade;
mod flood;
mod keep_less;
mod lifecycle;
mod network_file;
mod parser_table;
mod properties;
mod relay_links;
mod reload;
mod replay_fixtures;
mod scoped;
mod store_contract;
mod support;
mod timers;
mod undecryptable;
mod vault_upgrade;
