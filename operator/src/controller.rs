//! The reconcile pipeline: validate → build (pure) → apply (ConfigMap, ServiceAccount, Service, PVC
//! before the Deployment) → delete orphans → conditions → status, plus the Controller wiring.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::{info, warn};

use crate::apply::{FIELD_MANAGER, Outcome, apply, delete_owned};
use crate::crd::{NpmRegistry, NpmRegistryStatus};
use crate::resources::{self, BuildError, Desired, configmap, names};
use crate::status::{self, Failure, Observed};
use crate::telemetry::Metrics;

/// Label every child carries; the child watches select on it to keep their caches small.
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=npm-registry-operator";
/// Periodic re-check, which also repairs drift on children that lost our labels.
const RESYNC: Duration = Duration::from_secs(300);
const BACKOFF_BASE: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Why a reconcile failed; the error policy retries with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("malformed NpmRegistry: {0}")]
    Malformed(String),
    #[error("{0}")]
    Build(#[from] BuildError),
    #[error("applying {kind} {name}: {source}")]
    Apply {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("deleting {kind} {name}: {source}")]
    Delete {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("writing status: {0}")]
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
            Error::Apply { .. } => "apply",
            Error::Delete { .. } => "delete",
            Error::Status(_) => "status",
            Error::NoNamespace => "no_namespace",
        }
    }
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per object, for exponential backoff (kube has none per key).
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: Client, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            failures: Mutex::default(),
        }
    }

    async fn event(&self, reference: &ObjectReference, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        // An event that cannot be written must not fail the reconcile.
        if let Err(e) = self.recorder.publish(&event, reference).await {
            warn!(error = %e, reason, "cannot publish event");
        }
    }

    fn reset_backoff(&self, key: &str) {
        self.failures.lock().expect("lock").remove(key);
    }

    /// 5s, 10s, 20s, … capped at 5 minutes.
    fn next_backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().expect("lock");
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        BACKOFF_BASE
            .saturating_mul(2u32.saturating_pow(*n - 1))
            .min(BACKOFF_MAX)
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
    let reference = registry.object_ref(&());
    let desired = match resources::build(registry) {
        Ok(desired) => desired,
        Err(error) => {
            let failure = Failure {
                reason: "InvalidSpec".into(),
                message: error.to_string(),
            };
            report_failure(registry, &namespace, &reference, failure, ctx).await?;
            return Err(error.into());
        }
    };
    match apply_all(&desired, registry, &namespace, &reference, ctx).await {
        Ok((deployment, ingress)) => {
            let observed = Observed {
                generation: registry.metadata.generation,
                deployment: Some(&deployment),
                ingress: ingress.as_ref(),
                url: configmap::client_url(&registry.spec),
                failure: None,
            };
            let status = status::compute(&observed, registry.status.as_ref(), &now());
            write_status(&Api::namespaced(ctx.client.clone(), &namespace), registry, status).await?;
            Ok(Action::requeue(RESYNC))
        }
        Err(error) => {
            let failure = Failure {
                reason: "ApplyFailed".into(),
                message: error.to_string(),
            };
            report_failure(registry, &namespace, &reference, failure, ctx).await?;
            Err(error)
        }
    }
}

/// Degraded status and a Warning event for a failure.
async fn report_failure(
    registry: &NpmRegistry,
    namespace: &str,
    reference: &ObjectReference,
    failure: Failure,
    ctx: &Context,
) -> Result<(), Error> {
    let observed = Observed {
        generation: registry.metadata.generation,
        url: configmap::client_url(&registry.spec),
        failure: Some(failure.clone()),
        ..Observed::default()
    };
    let status = status::compute(&observed, registry.status.as_ref(), &now());
    let changed = write_status(&Api::namespaced(ctx.client.clone(), namespace), registry, status).await?;
    if changed {
        ctx.event(reference, EventType::Warning, &failure.reason, failure.message)
            .await;
    }
    Ok(())
}

/// Applies every desired child in dependency order, then removes the ones no longer wanted.
/// Returns the live Deployment and Ingress for status.
async fn apply_all(
    desired: &Desired,
    registry: &NpmRegistry,
    namespace: &str,
    reference: &ObjectReference,
    ctx: &Context,
) -> Result<(Deployment, Option<Ingress>), Error> {
    let step = Step {
        client: &ctx.client,
        namespace,
        reference,
        ctx,
    };
    // Everything the pods mount or use exists before the Deployment references it.
    step.apply(&desired.config_map).await?;
    step.apply(&desired.service_account).await?;
    step.apply(&desired.service).await?;
    if let Some(pvc) = &desired.pvc {
        step.apply(pvc).await?;
    }
    let deployment = step.apply(&desired.deployment).await?;
    let ingress = match &desired.ingress {
        Some(ingress) => Some(step.apply(ingress).await?),
        None => None,
    };
    match &desired.pdb {
        Some(pdb) => drop(step.apply(pdb).await?),
        None => step.delete_orphan::<PodDisruptionBudget>(registry).await?,
    }
    match &desired.hpa {
        Some(hpa) => drop(step.apply(hpa).await?),
        None => step.delete_orphan::<HorizontalPodAutoscaler>(registry).await?,
    }
    if desired.ingress.is_none() {
        step.delete_orphan::<Ingress>(registry).await?;
    }
    // A PVC is never deleted as an orphan: switching storage must not destroy packages.
    Ok((deployment, ingress))
}

struct Step<'a> {
    client: &'a Client,
    namespace: &'a str,
    reference: &'a ObjectReference,
    ctx: &'a Context,
}

impl Step<'_> {
    async fn apply<K>(&self, desired: &K) -> Result<K, Error>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Serialize
            + DeserializeOwned
            + Clone
            + Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), self.namespace);
        let kind = K::kind(&()).to_string();
        let name = desired.name_any();
        let (live, outcome) = apply(&api, desired).await.map_err(|source| Error::Apply {
            kind: kind.clone(),
            name: name.clone(),
            source,
        })?;
        let reason = match outcome {
            Outcome::Unchanged => return Ok(live),
            Outcome::Created => "Created",
            Outcome::Updated => "Updated",
        };
        info!(kind, name, reason, "applied");
        self.ctx
            .event(
                self.reference,
                EventType::Normal,
                reason,
                format!("{reason} {kind} {name}"),
            )
            .await;
        Ok(live)
    }

    async fn delete_orphan<K>(&self, registry: &NpmRegistry) -> Result<(), Error>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + DeserializeOwned + Clone + Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), self.namespace);
        let name = names::workload(&registry.name_any());
        let uid = registry.uid().unwrap_or_default();
        let kind = K::kind(&()).to_string();
        let deleted = delete_owned(&api, &name, &uid).await.map_err(|source| Error::Delete {
            kind: kind.clone(),
            name: name.clone(),
            source,
        })?;
        if deleted {
            info!(kind, name, "deleted orphan");
            self.ctx
                .event(
                    self.reference,
                    EventType::Normal,
                    "Deleted",
                    format!("Deleted {kind} {name}"),
                )
                .await;
        }
        Ok(())
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
        ctx.event(&reference, EventType::Warning, &failure.reason, failure.message.clone())
            .await;
    }
    Err(Error::Malformed(invalid.error.clone()))
}

fn now() -> Time {
    Time(Timestamp::now())
}

/// Runs the controller until shutdown: NpmRegistries in `namespace` (or all), and every child kind
/// it owns, so that editing or deleting a child is repaired.
pub async fn run(client: Client, namespace: Option<String>, metrics: Arc<Metrics>) {
    let registries: Api<Guarded> = scoped(&client, namespace.as_deref());
    let children = watcher::Config::default().labels(MANAGED_BY_SELECTOR);
    let ctx = Arc::new(Context::new(client.clone(), metrics));
    Controller::new(registries, watcher::Config::default().any_semantic())
        .owns(scoped::<ConfigMap>(&client, namespace.as_deref()), children.clone())
        .owns(
            scoped::<ServiceAccount>(&client, namespace.as_deref()),
            children.clone(),
        )
        .owns(scoped::<Service>(&client, namespace.as_deref()), children.clone())
        .owns(
            scoped::<PersistentVolumeClaim>(&client, namespace.as_deref()),
            children.clone(),
        )
        .owns(scoped::<Deployment>(&client, namespace.as_deref()), children.clone())
        .owns(scoped::<Ingress>(&client, namespace.as_deref()), children.clone())
        .owns(
            scoped::<PodDisruptionBudget>(&client, namespace.as_deref()),
            children.clone(),
        )
        .owns(
            scoped::<HorizontalPodAutoscaler>(&client, namespace.as_deref()),
            children,
        )
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                warn!(%error, "controller");
            }
        })
        .await;
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn backoff_doubles_per_failure_up_to_five_minutes_and_resets() {
        let client = kube_fake_client::ClientBuilder::new().build().await.unwrap();
        let ctx = Context::new(client, Arc::default());
        let delays: Vec<u64> = (0..8).map(|_| ctx.next_backoff("ns/a").as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(ctx.next_backoff("ns/b").as_secs(), 5, "per object");
        ctx.reset_backoff("ns/a");
        assert_eq!(ctx.next_backoff("ns/a").as_secs(), 5);
    }
}
