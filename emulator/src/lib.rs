//! An in-process emulator of the Kubernetes API server, built to behave like the real
//! kube-apiserver for every call bare-ccm (and kubectl) makes, plus simulated kubelets.
//! It exists because no real API server can run on our machines; every end-to-end test,
//! benchmark and `bare-ccm sim` stands on it, so leniency here would make our tests lie.
#![forbid(unsafe_code)]

pub mod accounting;
pub mod faults;
pub mod kubelet;
pub mod rbac;
pub mod selector;
pub mod strategic;
pub mod validation;
