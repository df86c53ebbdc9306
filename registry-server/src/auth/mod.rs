//! Who is asking. Users, tokens and htpasswd come with the auth issue; for now every request is
//! anonymous.

pub mod identity;

pub use identity::Identity;
