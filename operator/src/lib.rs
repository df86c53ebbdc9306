//! The NpmRegistry operator: CRD types, pure builders for the child objects and the reconciler.
pub mod apply;
pub mod controller;
pub mod crd;
pub mod resources;
pub mod status;
pub mod telemetry;
pub mod validate;
