//! bare-ccm: a cloud-controller-manager for clusters without a cloud.
//!
//! The crate is split the way the work is: pure decisions (`config`, `node_view`,
//! `resolve`, `patch`, `plan`) that `explain`, `doctor` and the controller all share, and
//! thin I/O shells around them (`controller`, `leader`, `http`). Imports point down only:
//! `facts` (imports nothing of ours) <- `config`, `node_view` <- `resolve` <- `patch`,
//! `plan` <- `controller`, `explain`; a test (`module_graph`) keeps it so.
#![forbid(unsafe_code)]

pub mod agent;
pub mod config;
pub mod config_reload;
pub mod controller;
pub mod doctor;
pub mod explain;
pub mod facts;
pub mod http;
pub mod kubeclient;
pub mod leader;
pub mod metrics;
#[cfg(test)]
mod module_graph;
pub mod node_view;
pub mod output;
pub mod patch;
pub mod plan;
pub mod resolve;
pub mod run;
#[cfg(feature = "sim")]
pub mod sim;
pub mod telemetry;
#[cfg(test)]
mod test_support;
