//! The Controller wiring: NpmRegistries, every child kind of the table (each through a reflector
//! whose store the reconciles read), and the server pods (for status), so that editing or deleting
//! a child, or a pod changing state, reconciles its NpmRegistry at once.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use tracing::warn;

use crate::cache::Caches;
use crate::children::{ChildKind, ChildObject, KindVisitor, Watch};
pub use crate::context::Context;
use crate::crd::NpmRegistry;
pub use crate::reconcile::{ChildAction, ChildFailure, Error, error_policy, reconcile};
use crate::telemetry::Metrics;

/// Label every child and server pod carries; the watches select on it to keep their caches small.
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=npm-registry-operator";
/// The label naming the NpmRegistry a child or pod belongs to.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

type Guarded = DeserializeGuard<NpmRegistry>;

/// Runs the controller until shutdown, over NpmRegistries in `namespace` (or all).
pub async fn run(client: Client, namespace: Option<String>, metrics: Arc<Metrics>) {
    let registries: Api<Guarded> = scoped(&client, namespace.as_deref());
    let mut caches = Caches::default();
    let mut controller = Controller::new(registries, watcher::Config::default().any_semantic());
    for kind in ChildKind::ALL {
        controller = kind.visit(WatchKind {
            controller,
            client: &client,
            namespace: namespace.as_deref(),
            caches: &mut caches,
        });
    }
    let (pods, writer) = reflector::store::<Pod>();
    let pod_events = watcher(
        scoped::<Pod>(&client, namespace.as_deref()),
        watcher::Config::default().labels(MANAGED_BY_SELECTOR),
    )
    .default_backoff()
    .reflect(writer)
    .touched_objects();
    controller = controller.watches_stream(pod_events, by_instance_label);
    caches.set_pods(pods);

    let ctx = Arc::new(Context::new(client, metrics).with_caches(caches));
    controller
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                warn!(%error, "controller");
            }
        })
        .await;
}

/// Adds one child kind's watch (through its cache) to the controller.
struct WatchKind<'a> {
    controller: Controller<Guarded>,
    client: &'a Client,
    namespace: Option<&'a str>,
    caches: &'a mut Caches,
}

impl KindVisitor for WatchKind<'_> {
    type Output = Controller<Guarded>;
    fn visit<K: ChildObject>(self) -> Controller<Guarded> {
        let (store, writer) = reflector::store::<K>();
        let events = watcher(
            scoped::<K>(self.client, self.namespace),
            watcher::Config::default().labels(MANAGED_BY_SELECTOR),
        )
        .default_backoff()
        .reflect(writer)
        .touched_objects();
        self.caches.insert(store);
        match K::CHILD_KIND.watch() {
            Watch::ByOwner => self.controller.owns_stream(events),
            Watch::ByLabel => self.controller.watches_stream(events, by_instance_label),
        }
    }
}

/// The NpmRegistry an object belongs to, by its instance label.
pub fn by_instance_label<K: Resource>(object: K) -> Option<ObjectRef<Guarded>> {
    let name = object.labels().get(INSTANCE_LABEL)?;
    Some(ObjectRef::new(name).within(&object.namespace()?))
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;

    use super::*;

    #[test]
    fn a_labelled_child_without_owner_maps_to_its_registry() {
        let mut pvc = PersistentVolumeClaim::default();
        pvc.metadata.name = Some("npm-storage".into());
        pvc.metadata.namespace = Some("team".into());
        assert_eq!(by_instance_label(pvc.clone()), None, "no label, no registry");
        pvc.metadata.labels = Some([(INSTANCE_LABEL.to_string(), "npm".to_string())].into());
        assert_eq!(by_instance_label(pvc), Some(ObjectRef::new("npm").within("team")));
    }
}
