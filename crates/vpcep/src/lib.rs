//! The vpcep binary's library: wiring of the control plane (`serve`), usable from tests with a
//! pre-bound listener and an explicit shutdown signal.

pub mod cli;
pub mod server;
