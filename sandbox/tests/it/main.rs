//! The sandbox's integration tests: one binary, a module per subject, sharing [`common`].

mod common;

mod admin;
mod admin_contract;
mod afterpay;
mod cli;
mod conformance;
mod edges;
mod faults;
mod moyasar;
mod openapp;
mod optty;
mod reads;
mod schema_enforced;
mod signing_vectors;
