//! The NpmRegistry operator: CRD types, pure builders for the child objects and the reconciler.
pub mod apply;
pub mod cache;
pub mod children;
pub mod context;
pub mod controller;
pub mod crd;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod quantity;
pub mod reconcile;
pub mod resources;
pub mod status;
pub mod telemetry;
pub mod validate;
