//! neighborwatch: a Matrix bot for neighborhood rapid-response alert networks.
//!
//! Neighbors post sightings in end-to-end encrypted rooms; the bot reads each report,
//! merges reports of the same incident by place and time, decides when it is confirmed,
//! and relays confirmed alerts to nearby neighborhood rooms. See `PRODUCT.md` for the
//! contract and `ARCHITECTURE.md` for the data flow.
//!
//! # Layout
//!
//! The core does no I/O and reads no clock; time is an argument everywhere.
//!
//! Each module's dependencies point one way (`scripts/structure` checks it):
//!
//! - [`places`]: coordinates ([`places::LatLon`]), text normalization, the gazetteer and
//!   location resolution (geo URIs, coordinates, intersections, names, block addresses).
//! - [`report`]: recognizing and reading reports: quick reports, SALUTE blocks, times,
//!   counts, category, vehicles and plates; the rejection reasons.
//! - [`links`]: relay links between neighborhoods, with two-sided consent: the state
//!   machine and the one-hop rule.
//! - [`catalog`]: the message catalogs of `catalogs/` and their placeholders.
//! - [`config`]: the network file (TOML) → validated [`config::Network`]; reads the
//!   gazetteer and area files it names. Every error names file, line and key. The
//!   overlay of values changed from rooms, applied over the file, gives the effective
//!   network.
//! - [`model`]: the shared vocabulary: incident IDs, statuses, actions, incidents, the
//!   incident tag, hashed reporters, report records; the one status transition.
//! - [`command`]: commands people type (`!confirm`, `!false`, `!clear`, `!nw …`),
//!   parsed into plain data.
//! - [`lifecycle`]: who may act on an incident (roles, room admins) and the status table.
//! - [`routing`]: which rooms a confirmed incident is relayed to (by distance, and over
//!   accepted links).
//! - [`stats`]: the numbers of `!nw stats` (a ledger of incidents and refusals) and
//!   what each commit adds to the Prometheus counters.
//! - [`effect`]: [`effect::Effect`] and [`effect::OutgoingMessage`], what the core asks
//!   the outside world to do.
//! - [`decision`]: what the engine decided, as data, and the [`decision::Render`]
//!   contract that words it.
//! - [`admin`]: each `!nw` subcommand as a pure function of the room's view of the
//!   network (overlay changes and decisions out), with one check of who may.
//! - [`store`]: the [`store::Store`] trait with in-memory and `sled` backends; atomic
//!   commits.
//! - [`render`]: every outgoing message as data, in English or Spanish, from the
//!   catalogs; the only place user text is escaped for HTML. The engine is handed it as
//!   a [`decision::Render`] and calls it once per commit.
//! - [`incident`]: the sans-IO [`incident::Engine`]: deduplication, distinct-reporter
//!   counting (keyed hashes), confirmation, expiry, retention; the incident table and
//!   R-tree index.
//! - [`replay`]: offline replay of JSON-lines messages into JSON-lines actions.
//!
//! The Matrix shell, outside the core:
//!
//! - [`matrix`]: session, invites, events in, outbox sender out (`matrix-sdk`).
//! - [`metrics`]: Prometheus metrics and the health check, on an optional HTTP listener.
//! - [`init`]: `neighborwatch init`: the homeserver checked, the first rooms made, the
//!   network and env files written.
//! - [`service`]: running as a service: the pid and reload-outcome files, SIGHUP for
//!   `neighborwatch reload`, the health probe, systemd readiness.
//! - `devnet` (cargo feature `devnet`, off in the product build): a local Synapse
//!   network for the demo and the end-to-end tests.

#![forbid(unsafe_code)]
#![recursion_limit = "256"]

pub mod admin;
pub mod authority;
pub mod budget;
pub mod catalog;
pub mod command;
pub mod config;
pub mod decision;
#[cfg(feature = "devnet")]
pub mod devnet;
pub mod effect;
pub mod incident;
pub mod init;
pub mod lifecycle;
pub mod links;
pub mod logging;
pub mod matrix;
pub mod metrics;
pub mod model;
pub mod places;
pub mod render;
pub mod replay;
pub mod report;
pub mod routing;
pub mod service;
pub mod stats;
pub mod store;
