//! `npm audit`: passed to the uplinks as the client sent it.

use super::{Registry, RegistryError, Result};
use crate::uplink::UplinkError;
pub use crate::uplink::{AuditAnswer, AuditRequest};

impl Registry {
    /// The first uplink's answer; `None` when none is configured or answers.
    pub async fn audit(&self, request: AuditRequest<'_>) -> Result<Option<AuditAnswer>> {
        let Some(uplinks) = &self.uplinks else { return Ok(None) };
        uplinks
            .audit(&request)
            .await
            .map_err(|e| RegistryError::from(UplinkError::from(e)))
    }
}
