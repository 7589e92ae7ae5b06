//! MAOS over Cap'n Proto RPC on a Unix socket: the daemon's [`server`], a typed [`client`]
//! ([`IpcClient`], one more implementation of `maos_application::MaosApi`), the conversions
//! between wire and application types ([`convert`]), event streams in both directions, and the
//! code generated from
//! `schema/maos.capnp` ([`maos_capnp`]). `docs/ipc.md` describes the protocol; ADR 0005 the
//! threading model.
//!
//! # The generated code
//!
//! `src/generated/maos_capnp.rs` is generated from `schema/maos.capnp` and committed, so building
//! this crate needs no schema compiler. After changing the schema, regenerate it and commit both:
//!
//! ```text
//! MAOS_REGENERATE=1 cargo test -p maos-ipc --test ipc generated_code_is_current
//! ```
//!
//! That needs the `capnp` binary and its standard imports (Debian's `capnproto` and
//! `libcapnp-dev`). Without `MAOS_REGENERATE` the same test fails when the committed file differs
//! from what the schema produces, which is how CI catches a forgotten regeneration.

pub mod client;
pub mod convert;
pub mod daemon;
mod direct;
pub mod error;
mod follow;
mod gate;
pub mod peer;
pub mod server;

/// The code `capnpc` generates from `schema/maos.capnp` (do not edit; see the crate's docs).
#[path = "generated/maos_capnp.rs"]
#[rustfmt::skip]
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms,
    unused_qualifications,
    reason = "generated code"
)]
pub mod maos_capnp;

pub use client::{ConnectError, IpcClient};
pub use convert::DecodeError;
pub use daemon::{DaemonControl, DaemonInfo, UiRequest, UiServing};
pub use follow::FOLLOW_QUEUE;
pub use gate::MAX_CALLS_PER_CONNECTION;
pub use server::{
    BLOCKING_THREADS, HANDSHAKE_DEADLINE, MAX_RUNNING_CALLS, MAX_SUBSCRIPTIONS, Server,
};

/// The protocol version this build speaks (`protocolVersion` in the schema).
pub const PROTOCOL_VERSION: u32 = maos_capnp::PROTOCOL_VERSION;
