//! An in-process emulator of the Kubernetes API server, built to behave like the real
//! kube-apiserver for every call bare-ccm (and kubectl) makes, plus simulated kubelets.
//! It exists because no real API server can run on our machines; every end-to-end test,
//! benchmark and `bare-ccm sim` stands on it, so leniency here would make our tests lie.
//! `tests/conformance.rs` holds it to that: one script of requests runs against the
//! emulator and a real kube-apiserver (the test bed of `tests/testbed`), and every
//! difference is either fixed here or listed, with the reason it is harmless, in
//! docs/testing.md ("Emulator differences"), which also maps the modules ("The
//! emulator's layout").
#![forbid(unsafe_code)]

pub mod accounting;
mod auth;
mod discovery;
mod error;
mod event_versions;
pub mod faults;
mod gofmt;
mod kubeconfig;
pub mod kubelet;
mod patch;
pub mod probe;
pub mod rbac;
mod registry;
mod resources;
mod reviews;
mod routes;
pub mod selector;
mod server;
mod status;
mod store;
pub mod strategic;
mod sync;
mod tls;
pub mod validation;
mod watch;

pub use error::EmulatorError;
pub use server::{Emulator, EmulatorOptions};
