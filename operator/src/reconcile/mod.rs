//! The reconcile pipeline: validate → build (pure) → apply every child in the table's order (a
//! failure stops only the kinds that need the failed one; `step.rs`) → delete unwanted children →
//! conditions → status. Each child change is one event naming the child; nothing changed, nothing
//! written.

mod error;
mod step;

use std::sync::Arc;

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
use tracing::warn;

pub use error::{ChildAction, ChildFailure, Error, describe};
use step::Step;

use crate::apply::FIELD_MANAGER;
use crate::children::Child;
use crate::context::Context;
use crate::crd::{NpmRegistry, NpmRegistryStatus};
use crate::resources::{self, View, configmap};
use crate::status::{self, Failure, Observed};

/// Periodic re-check, which also repairs drift on children that lost our labels.
const RESYNC: std::time::Duration = std::time::Duration::from_secs(300);
/// Field manager that sets an autoscaled Deployment's first replica count, so that ours never owns
/// `spec.replicas` while the HPA does (dropping an owned field would reset it to 1).
pub const REPLICAS_MANAGER: &str = "npm-registry-operator-initial-replicas";

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
