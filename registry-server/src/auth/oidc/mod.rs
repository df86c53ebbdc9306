//! npm's OIDC trusted publishing: a CI job's id-token exchanged for a short-lived token that may
//! publish one package.

mod claims;

pub use claims::{TrustedPublisher, glob_matches};
