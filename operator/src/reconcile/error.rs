//! Why a reconcile failed, and what the API server said, in words a condition can carry.

use crate::children::ChildKind;
use crate::resources::BuildError;

/// Why a reconcile failed; the error policy retries with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("malformed NpmRegistry: {0}")]
    Malformed(String),
    #[error("{0}")]
    Build(#[from] BuildError),
    #[error("{}", failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Children { failures: Vec<ChildFailure> },
    #[error("writing status: {}", describe(.0))]
    Status(#[source] kube::Error),
    #[error("the NpmRegistry has no namespace")]
    NoNamespace,
}

impl Error {
    /// Label of the error metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Malformed(_) => "malformed",
            Error::Build(_) => "invalid_spec",
            Error::Children { .. } => "child",
            Error::Status(_) => "status",
            Error::NoNamespace => "no_namespace",
        }
    }
}

/// What was tried on a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildAction {
    Apply,
    Delete,
    /// Not applied because a kind it needs failed in this pass.
    Wait(ChildKind),
}

/// One child that could not be brought to its desired state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ChildFailure {
    pub kind: ChildKind,
    pub name: String,
    pub action: ChildAction,
    pub message: String,
}

impl ChildFailure {
    fn describe(&self) -> String {
        let (kind, name) = (self.kind.name(), &self.name);
        match self.action {
            ChildAction::Apply => format!("applying {kind} {name}: {}", self.message),
            ChildAction::Delete => format!("deleting {kind} {name}: {}", self.message),
            ChildAction::Wait(need) => format!("{kind} {name} not applied: {} failed", need.name()),
        }
    }
}

/// What the API server said, without the client's debug dump: its message and reason.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let mut text = if status.message.is_empty() {
                "the API server refused the request".to_string()
            } else {
                status.message.clone()
            };
            if !status.reason.is_empty() {
                text.push_str(&format!(" ({}, {})", status.reason, status.code));
            }
            text
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    #[test]
    fn api_errors_read_as_the_api_server_message() {
        let error = kube::Error::Api(Box::new(Status {
            message:
                "PersistentVolumeClaim \"npm-storage\" is invalid: spec: Forbidden: spec is immutable after creation"
                    .into(),
            reason: "Invalid".into(),
            code: 422,
            ..Status::default()
        }));
        let text = describe(&error);
        assert_eq!(
            text,
            "PersistentVolumeClaim \"npm-storage\" is invalid: spec: Forbidden: spec is immutable after creation (Invalid, 422)"
        );
        assert!(!text.contains("Status {"), "{text}");
    }
}
