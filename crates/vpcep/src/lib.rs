//! The vpcep binary's library: wiring of the control plane (`serve`), usable from tests with a
//! pre-bound listener and an explicit shutdown signal.
//!
//! # Layout
//! - [`server`]: `vpcep serve`: the store, tenants, reconciler, data plane, DNS and the API.
//! - [`cli`]: the client commands (`cli/config.rs`: profiles; `cli/output.rs`: json, table,
//!   id output).
//! - `main.rs` (the binary): argument parsing and the `serve`, `agent` and client subcommands.

pub mod cli;
pub mod server;
