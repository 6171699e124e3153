//! bare-ccm: a cloud-controller-manager for clusters without a cloud.
//!
//! The crate is split the way the work is: pure decisions (`config`, `node_view`,
//! `resolve`, `patch`) that `explain`, `doctor` and the controller all share, and thin
//! I/O shells around them (`controller`, `leader`, `http`).
#![forbid(unsafe_code)]

pub mod config;
pub mod node_view;
pub mod patch;
pub mod resolve;
