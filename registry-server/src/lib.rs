//! An npm registry server that reads Verdaccio's config, storage layout and htpasswd file.

pub mod allocator;
pub mod app;
pub mod auth;
pub mod config;
pub mod cpu_pool;
pub mod flight;
pub mod http;
pub mod metrics;
pub mod package;
pub mod registry;
pub mod reminder;
pub mod serve;
pub mod signing;
pub mod storage;
pub mod uplink;
pub mod web;
