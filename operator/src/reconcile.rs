//! The reconcile pipeline: validate → build (pure) → apply every child in the table's order (a
//! failure stops only the kinds that need the failed one) → delete unwanted children → conditions
//! → status. Each child change is one event naming the child; nothing changed, nothing written.

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::apply::{self, FIELD_MANAGER, Outcome};
use crate::children::{Child, ChildKind, ChildObject, KindVisitor, ObjectVisitor};
use crate::context::Context;
use crate::crd::{NpmRegistry, NpmRegistryStatus};
use crate::resources::{self, BuildError, Desired, View, configmap, names};
use crate::status::{self, Failure, Observed};

/// Periodic re-check, which also repairs drift on children that lost our labels.
const RESYNC: std::time::Duration = std::time::Duration::from_secs(300);
/// Field manager that sets an autoscaled Deployment's first replica count, so that ours never owns
/// `spec.replicas` while the HPA does (dropping an owned field would reset it to 1).
pub const REPLICAS_MANAGER: &str = "npm-registry-operator-initial-replicas";

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

type Guarded = DeserializeGuard<NpmRegistry>;

fn key(meta: &kube::core::ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

/// Reconciles one NpmRegistry. A malformed object becomes an error and a condition, not a dead watch.
pub async fn reconcile(object: Arc<Guarded>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile();
    let (result, key) = match &object.0 {
        Ok(registry) => (reconcile_registry(registry, &ctx).await, key(&registry.metadata)),
        Err(invalid) => (reconcile_malformed(invalid, &ctx).await, key(&invalid.metadata)),
    };
    if result.is_ok() {
        ctx.reset_backoff(&key);
    }
    result
}

/// Retries a failed reconcile with exponential backoff per object.
pub fn error_policy(object: Arc<Guarded>, error: &Error, ctx: Arc<Context>) -> Action {
    let meta = match &object.0 {
        Ok(registry) => &registry.metadata,
        Err(invalid) => &invalid.metadata,
    };
    ctx.metrics.failure(error.metric_label());
    let delay = ctx.next_backoff(&key(meta));
    warn!(error = %error, object = %key(meta), retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

async fn reconcile_registry(registry: &NpmRegistry, ctx: &Context) -> Result<Action, Error> {
    let namespace = registry.namespace().ok_or(Error::NoNamespace)?;
    if registry.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove the children; nothing to do.
        return Ok(Action::await_change());
    }
    let step = Step {
        ctx,
        namespace: &namespace,
        registry,
        reference: registry.object_ref(&()),
    };
    let (desired, url) = match resources::build(registry) {
        Ok(desired) => {
            let view = View::new(registry)?;
            (desired, configmap::client_url(&view))
        }
        Err(error) => {
            let failure = Failure {
                reason: "InvalidSpec".into(),
                message: error.to_string(),
            };
            step.write(Observed {
                generation: registry.metadata.generation,
                failure: Some(failure),
                ..Observed::default()
            })
            .await?;
            return Err(error.into());
        }
    };

    let (applied, failures) = step.apply_all(&desired).await;
    let deployment = applied.iter().find_map(|c| match c {
        Child::Deployment(d) => Some(d),
        _ => None,
    });
    let ingress = applied.iter().find_map(|c| match c {
        Child::Ingress(i) => Some(i),
        _ => None,
    });
    let pvc = applied.iter().find_map(|c| match c {
        Child::PersistentVolumeClaim(p) => Some(p),
        _ => None,
    });
    let selector: Vec<(String, String)> = desired
        .deployment
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    let pods = match ctx.caches.pods(&ctx.client, &namespace, &selector).await {
        Ok(pods) => pods,
        Err(e) => {
            warn!(error = %describe(&e), "cannot list the server pods for status");
            Vec::new()
        }
    };
    let failure = (!failures.is_empty()).then(|| Failure {
        reason: "ApplyFailed".into(),
        message: failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
    });
    step.write(Observed {
        generation: registry.metadata.generation,
        deployment,
        ingress,
        pvc,
        pods: &pods,
        url: Some(url),
        failure,
    })
    .await?;
    if failures.is_empty() {
        Ok(Action::requeue(RESYNC))
    } else {
        Err(Error::Children { failures })
    }
}

/// One reconcile's view of one NpmRegistry.
struct Step<'a> {
    ctx: &'a Context,
    namespace: &'a str,
    registry: &'a NpmRegistry,
    reference: ObjectReference,
}

impl<'a> Step<'a> {
    /// Applies every wanted child and deletes every unwanted one, in the table's order; a failure
    /// skips only the kinds that need the failed kind. Returns the children as they now are.
    async fn apply_all(&'a self, desired: &Desired) -> (Vec<Child>, Vec<ChildFailure>) {
        let mut applied = Vec::new();
        let mut failures: Vec<ChildFailure> = Vec::new();
        for &kind in ChildKind::ALL {
            let name = names::of(kind, &self.registry.name_any());
            if let Some(&need) = kind.needs().iter().find(|k| failures.iter().any(|f| f.kind == **k)) {
                failures.push(ChildFailure {
                    kind,
                    name,
                    action: ChildAction::Wait(need),
                    message: String::new(),
                });
                continue;
            }
            let result = match desired.get(kind) {
                Some(child) => self.apply_child(child, desired).await.map(|live| applied.push(live)),
                None if kind.deleted_when_unwanted() => kind.visit(DeleteChild(self)).await,
                None => Ok(()),
            };
            if let Err(failure) = result {
                failures.push(failure);
            }
        }
        (applied, failures)
    }

    async fn apply_child(&'a self, child: Child, desired: &Desired) -> Result<Child, ChildFailure> {
        let autoscaled = child.kind() == ChildKind::Deployment && desired.hpa.is_some();
        let fail = |error: kube::Error| ChildFailure {
            kind: ChildKind::Deployment,
            name: desired.deployment.name_any(),
            action: ChildAction::Apply,
            message: describe(&error),
        };
        if autoscaled {
            self.hand_replicas_to_hpa(desired, false).await.map_err(fail)?;
        }
        let (live, outcome) = child.visit(ApplyChild(self)).await?;
        if autoscaled
            && outcome == Outcome::Created
            && let Some(scaled) = self.hand_replicas_to_hpa(desired, true).await.map_err(fail)?
        {
            return Ok(Child::Deployment(scaled));
        }
        Ok(live)
    }

    async fn apply<K: ChildObject>(&self, desired: &K) -> Result<(K, Outcome), ChildFailure> {
        let client = &self.ctx.client;
        let api: Api<K> = Api::namespaced(client.clone(), self.namespace);
        let name = desired.name_any();
        let fail = |error: kube::Error| ChildFailure {
            kind: K::CHILD_KIND,
            name: name.clone(),
            action: ChildAction::Apply,
            message: describe(&error),
        };
        let live = self
            .ctx
            .caches
            .live::<K>(client, self.namespace, &name)
            .await
            .map_err(fail)?;
        let result = apply::apply(&api, live, desired).await;
        let (object, outcome) = match result {
            Ok(applied) => applied,
            Err(error) => {
                let failure = fail(error);
                self.child_event(
                    K::CHILD_KIND,
                    &name,
                    EventType::Warning,
                    "ApplyFailed",
                    failure.to_string(),
                )
                .await;
                return Err(failure);
            }
        };
        if outcome != Outcome::Unchanged {
            self.ctx.metrics.write(K::CHILD_KIND.name(), outcome);
        }
        let reason = match outcome {
            Outcome::Unchanged | Outcome::NoOp => return Ok((object, outcome)),
            Outcome::Created => "Created",
            Outcome::Updated => "Updated",
        };
        let kind = K::CHILD_KIND.name();
        info!(kind, name, reason, "applied");
        self.child_event(
            K::CHILD_KIND,
            &name,
            EventType::Normal,
            reason,
            format!("{reason} {kind} {name}"),
        )
        .await;
        Ok((object, outcome))
    }

    /// An autoscaled Deployment's replica count belongs to the HPA. Our manager must not own it
    /// (our next apply, which leaves it out, would reset it to 1), so a separate manager sets it:
    /// to `minReplicas` once the Deployment is created (the HPA would take a while to raise it
    /// from 1), and to the live count when our manager owned it (the NpmRegistry had fixed
    /// replicas before).
    async fn hand_replicas_to_hpa(&self, desired: &Desired, created: bool) -> Result<Option<Deployment>, kube::Error> {
        let Some(min) = desired
            .hpa
            .as_ref()
            .and_then(|h| h.spec.as_ref())
            .and_then(|s| s.min_replicas)
        else {
            return Ok(None);
        };
        let name = desired.deployment.name_any();
        let replicas = if created {
            min
        } else {
            let client = &self.ctx.client;
            let Some(live) = self
                .ctx
                .caches
                .live::<Deployment>(client, self.namespace, &name)
                .await?
            else {
                return Ok(None);
            };
            let fields = live.metadata.managed_fields.as_deref().unwrap_or_default();
            if !apply::owns_field(fields, FIELD_MANAGER, &["spec", "replicas"]) {
                return Ok(None);
            }
            live.spec.and_then(|s| s.replicas).unwrap_or(min).max(min)
        };
        let patch = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"replicas": replicas},
        });
        let api: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), self.namespace);
        let scaled = api
            .patch(
                &name,
                &PatchParams::apply(REPLICAS_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        self.ctx.metrics.write("Deployment", Outcome::Updated);
        Ok(Some(scaled))
    }

    async fn delete_unwanted<K: ChildObject>(&self) -> Result<(), ChildFailure> {
        let client = &self.ctx.client;
        let name = names::of(K::CHILD_KIND, &self.registry.name_any());
        let fail = |error: kube::Error| ChildFailure {
            kind: K::CHILD_KIND,
            name: name.clone(),
            action: ChildAction::Delete,
            message: describe(&error),
        };
        let Some(live) = self
            .ctx
            .caches
            .existing::<K>(client, self.namespace, &name)
            .await
            .map_err(fail)?
        else {
            return Ok(());
        };
        let api: Api<K> = Api::namespaced(client.clone(), self.namespace);
        let uid = self.registry.uid().unwrap_or_default();
        match apply::delete_owned(&api, &live, &uid).await {
            Ok(false) => Ok(()),
            Ok(true) => {
                let kind = K::CHILD_KIND.name();
                info!(kind, name, "deleted: no longer wanted");
                self.ctx.metrics.write(kind, Outcome::Updated);
                self.child_event(
                    K::CHILD_KIND,
                    &name,
                    EventType::Normal,
                    "Deleted",
                    format!("Deleted {kind} {name}"),
                )
                .await;
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(error) => {
                let failure = fail(error);
                self.child_event(
                    K::CHILD_KIND,
                    &name,
                    EventType::Warning,
                    "DeleteFailed",
                    failure.to_string(),
                )
                .await;
                Err(failure)
            }
        }
    }

    /// An event on the NpmRegistry about one child: reason per outcome, action per kind, the
    /// child as the related object, so no two children share a series.
    async fn child_event(&self, kind: ChildKind, name: &str, type_: EventType, reason: &str, note: String) {
        let resource = kind.api_resource();
        let related = ObjectReference {
            api_version: Some(resource.api_version),
            kind: Some(resource.kind),
            name: Some(name.to_string()),
            namespace: Some(self.namespace.to_string()),
            ..ObjectReference::default()
        };
        let verb = if reason.starts_with("Delete") {
            "Delete"
        } else {
            "Apply"
        };
        self.ctx
            .event(
                &self.reference,
                Some(related),
                type_,
                reason,
                format!("{verb}{}", kind.name()),
                note,
            )
            .await;
    }

    /// Computes and writes the status (only when it changed); a failure also gets a Warning
    /// event when it is new.
    async fn write(&self, observed: Observed<'_>) -> Result<(), Error> {
        let failure = observed.failure.clone();
        let status = status::compute(&observed, self.registry.status.as_ref(), &now());
        let api: Api<NpmRegistry> = Api::namespaced(self.ctx.client.clone(), self.namespace);
        let changed = write_status(&api, self.registry, status).await?;
        if changed && let Some(failure) = failure {
            self.ctx
                .event(
                    &self.reference,
                    None,
                    EventType::Warning,
                    &failure.reason,
                    "Reconcile".into(),
                    failure.message,
                )
                .await;
        }
        Ok(())
    }
}

struct ApplyChild<'a>(&'a Step<'a>);

impl<'a> ObjectVisitor for ApplyChild<'a> {
    type Output = BoxFuture<'a, Result<(Child, Outcome), ChildFailure>>;
    fn visit<K: ChildObject>(self, object: &K) -> Self::Output {
        let (step, object) = (self.0, object.clone());
        Box::pin(async move {
            let (live, outcome) = step.apply(&object).await?;
            Ok((live.into_child(), outcome))
        })
    }
}

struct DeleteChild<'a>(&'a Step<'a>);

impl<'a> KindVisitor for DeleteChild<'a> {
    type Output = BoxFuture<'a, Result<(), ChildFailure>>;
    fn visit<K: ChildObject>(self) -> Self::Output {
        let step = self.0;
        Box::pin(async move { step.delete_unwanted::<K>().await })
    }
}

/// Patches the status subresource only when it changed; never touches `spec`.
async fn write_status(
    api: &Api<NpmRegistry>,
    registry: &NpmRegistry,
    status: NpmRegistryStatus,
) -> Result<bool, Error> {
    if registry.status.as_ref() == Some(&status) {
        return Ok(false);
    }
    let patch = json!({
        "apiVersion": NpmRegistry::api_version(&()),
        "kind": NpmRegistry::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&registry.name_any(), &params, &Patch::Apply(&patch))
        .await
        .map_err(Error::Status)?;
    Ok(true)
}

/// The object does not deserialize into this operator's types (for example a newer CRD): report it in
/// status through the untyped API and keep watching.
async fn reconcile_malformed(invalid: &InvalidObject, ctx: &Context) -> Result<Action, Error> {
    let meta = &invalid.metadata;
    let namespace = meta.namespace.clone().ok_or(Error::NoNamespace)?;
    let name = meta.name.clone().unwrap_or_default();
    let resource = ApiResource::erase::<NpmRegistry>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &namespace, &resource);
    let live = api.get_opt(&name).await.map_err(Error::Status)?;
    let previous: Option<NpmRegistryStatus> = live
        .and_then(|o| o.data.get("status").cloned())
        .and_then(|s| serde_json::from_value(s).ok());
    let failure = Failure {
        reason: "InvalidSpec".into(),
        message: format!("cannot read the object: {}", invalid.error),
    };
    let observed = Observed {
        generation: meta.generation,
        failure: Some(failure.clone()),
        ..Observed::default()
    };
    let status = status::compute(&observed, previous.as_ref(), &now());
    if previous.as_ref() != Some(&status) {
        let patch = json!({"apiVersion": resource.api_version, "kind": resource.kind, "status": status});
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch_status(&name, &params, &Patch::Apply(&patch))
            .await
            .map_err(Error::Status)?;
        let reference = ObjectReference {
            api_version: Some(resource.api_version.clone()),
            kind: Some(resource.kind.clone()),
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            uid: meta.uid.clone(),
            ..ObjectReference::default()
        };
        ctx.event(
            &reference,
            None,
            EventType::Warning,
            &failure.reason,
            "Reconcile".into(),
            failure.message.clone(),
        )
        .await;
    }
    Err(Error::Malformed(invalid.error.clone()))
}

fn now() -> Time {
    Time(Timestamp::now())
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
