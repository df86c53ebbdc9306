//! Reconcile against an in-memory API server (kube-fake-client): create, no-op second pass, spec
//! change, child deleted, orphan removal, apply error → Degraded, invalid and malformed objects.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::{Client, ResourceExt};
use kube_fake_client::{ClientBuilder, Error as FakeError, interceptor};
use operator::controller::{Context, Error, reconcile};
use operator::crd::{IngressSpec, NpmRegistry, NpmRegistrySpec, S3Storage, StorageSpec, VolumeStorage};
use operator::resources::CONFIG_CHECKSUM_ANNOTATION;
use operator::telemetry::Metrics;
use serde_json::json;

const NS: &str = "team";
const UID: &str = "2f6d1e3a-1111-4a4a-9b9b-0123456789ab";

/// A fake API server that records every write and can fail Deployment applies on demand.
struct Harness {
    client: Client,
    writes: Arc<Mutex<Vec<String>>>,
    fail_deployment: Arc<AtomicBool>,
    ctx: Arc<Context>,
}

impl Harness {
    async fn new(seed: Vec<serde_json::Value>) -> Self {
        let writes: Arc<Mutex<Vec<String>>> = Arc::default();
        let fail_deployment = Arc::new(AtomicBool::new(false));
        let record = |writes: &Arc<Mutex<Vec<String>>>, entry: String| writes.lock().unwrap().push(entry);
        let (w1, w2, w3, w4, w5, w6) = (
            writes.clone(),
            writes.clone(),
            writes.clone(),
            writes.clone(),
            writes.clone(),
            writes.clone(),
        );
        let fail = fail_deployment.clone();
        let funcs = interceptor::Funcs::new()
            .create(move |c| {
                record(&w1, format!("create {}", c.object["kind"].as_str().unwrap_or("?")));
                Ok(None)
            })
            .patch(move |c| {
                let kind = c.patch["kind"].as_str().unwrap_or("?").to_string();
                if kind == "Deployment" && fail.load(Ordering::SeqCst) {
                    return Err(FakeError::Internal("admission webhook denied the Deployment".into()));
                }
                record(&w2, format!("patch {kind} {}", c.name));
                Ok(None)
            })
            .patch_status(move |c| {
                record(&w3, format!("patch-status {}", c.name));
                Ok(None)
            })
            .delete(move |c| {
                record(&w4, format!("delete {}", c.name));
                Ok(None)
            })
            .update(move |c| {
                record(&w5, format!("update {}", c.object["kind"].as_str().unwrap_or("?")));
                Ok(None)
            })
            .replace(move |c| {
                record(&w6, format!("replace {}", c.name));
                Ok(None)
            });
        let client = ClientBuilder::new()
            .with_resource::<NpmRegistry>()
            .with_status_subresource::<NpmRegistry>()
            .with_runtime_objects(seed)
            .with_interceptor_funcs(funcs)
            .build()
            .await
            .expect("fake client");
        let ctx = Arc::new(Context::new(client.clone(), Arc::new(Metrics::default())));
        Harness {
            client,
            writes,
            fail_deployment,
            ctx,
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Reads the NpmRegistry as the controller's watch would, and reconciles it.
    async fn reconcile(&self, name: &str) -> Result<kube::runtime::controller::Action, Error> {
        let object = self
            .api::<DeserializeGuard<NpmRegistry>>()
            .get(name)
            .await
            .expect("registry exists");
        reconcile(Arc::new(object), self.ctx.clone()).await
    }

    /// Writes since the last call, events excluded (they are reported, not state).
    fn take_writes(&self) -> Vec<String> {
        let mut writes = self.writes.lock().unwrap();
        std::mem::take(&mut *writes)
            .into_iter()
            .filter(|w| !w.contains("Event"))
            .collect()
    }

    async fn registry(&self, name: &str) -> NpmRegistry {
        self.api::<NpmRegistry>().get(name).await.unwrap()
    }

    /// Replaces the whole spec, as `kubectl apply` of an edited manifest would.
    async fn set_spec(&self, name: &str, spec: &NpmRegistrySpec) {
        let mut registry = self.registry(name).await;
        registry.spec = spec.clone();
        self.api::<NpmRegistry>()
            .replace(name, &Default::default(), &registry)
            .await
            .unwrap();
        self.take_writes();
    }
}

fn registry_json(name: &str, spec: &NpmRegistrySpec) -> serde_json::Value {
    json!({
        "apiVersion": "npmregistry.dev/v1alpha1",
        "kind": "NpmRegistry",
        "metadata": {"name": name, "namespace": NS, "uid": UID, "generation": 1},
        "spec": spec,
    })
}

fn volume_spec() -> NpmRegistrySpec {
    NpmRegistrySpec {
        replicas: 1,
        storage: StorageSpec {
            volume: Some(VolumeStorage::default()),
            s3: None,
        },
        ..NpmRegistrySpec::default()
    }
}

fn s3_spec() -> NpmRegistrySpec {
    NpmRegistrySpec {
        replicas: 2,
        storage: StorageSpec {
            volume: None,
            s3: Some(S3Storage {
                bucket: "bucket".into(),
                ..S3Storage::default()
            }),
        },
        ..NpmRegistrySpec::default()
    }
}

fn condition(registry: &NpmRegistry, type_: &str) -> (String, String) {
    let status = registry.status.as_ref().expect("status written");
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"));
    (c.status.clone(), c.reason.clone())
}

fn owned_by_registry<K: kube::Resource>(object: &K) -> bool {
    object
        .owner_references()
        .iter()
        .any(|o| o.uid == UID && o.kind == "NpmRegistry" && o.controller == Some(true))
}

#[tokio::test]
async fn create_applies_every_child_in_order_with_owner_references_and_writes_status() {
    let h = Harness::new(vec![registry_json("npm", &volume_spec())]).await;
    h.reconcile("npm").await.expect("reconcile");

    let writes = h.take_writes();
    let order: Vec<&str> = writes
        .iter()
        .filter(|w| w.starts_with("patch "))
        .map(String::as_str)
        .collect();
    assert_eq!(
        order,
        [
            "patch ConfigMap npm-config",
            "patch ServiceAccount npm",
            "patch Service npm",
            "patch PersistentVolumeClaim npm-storage",
            "patch Deployment npm",
        ],
        "ConfigMap, ServiceAccount, Service and PVC before the Deployment"
    );
    assert!(writes.contains(&"patch-status npm".to_string()), "{writes:?}");

    assert!(owned_by_registry(
        &h.api::<ConfigMap>().get("npm-config").await.unwrap()
    ));
    assert!(owned_by_registry(&h.api::<ServiceAccount>().get("npm").await.unwrap()));
    assert!(owned_by_registry(&h.api::<Service>().get("npm").await.unwrap()));
    assert!(owned_by_registry(
        &h.api::<PersistentVolumeClaim>().get("npm-storage").await.unwrap()
    ));
    let deployment = h.api::<Deployment>().get("npm").await.unwrap();
    assert!(owned_by_registry(&deployment));

    let registry = h.registry("npm").await;
    let status = registry.status.as_ref().unwrap();
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.ready_replicas, Some(0));
    // No Deployment controller in the fake: pods never become ready, and status says so.
    assert_eq!(condition(&registry, "Ready").0, "False");
    assert_eq!(condition(&registry, "Progressing").0, "True");
    assert_eq!(condition(&registry, "Degraded").0, "False");
    assert_eq!(registry.spec, volume_spec(), "the operator never writes spec");
}

#[tokio::test]
async fn second_pass_with_nothing_changed_writes_nothing() {
    let h = Harness::new(vec![registry_json("npm", &s3_spec())]).await;
    h.reconcile("npm").await.expect("first pass");
    let first = h.take_writes();
    assert!(!first.is_empty());

    h.reconcile("npm").await.expect("second pass");
    assert_eq!(h.take_writes(), Vec::<String>::new(), "a steady state must not write");
}

#[tokio::test]
async fn spec_change_updates_the_config_and_rolls_the_deployment() {
    let h = Harness::new(vec![registry_json("npm", &volume_spec())]).await;
    h.reconcile("npm").await.unwrap();
    h.take_writes();
    let before = h.api::<Deployment>().get("npm").await.unwrap();

    let mut spec = volume_spec();
    spec.max_body_size = Some("200mb".into());
    spec.image = Some("registry.example.com/npm-registry-server:next".into());
    h.set_spec("npm", &spec).await;
    h.reconcile("npm").await.unwrap();

    let writes = h.take_writes();
    assert!(writes.contains(&"patch ConfigMap npm-config".to_string()), "{writes:?}");
    assert!(writes.contains(&"patch Deployment npm".to_string()), "{writes:?}");
    assert!(
        !writes.iter().any(|w| w.contains("Service ")),
        "unchanged children are not written: {writes:?}"
    );
    let config = h.api::<ConfigMap>().get("npm-config").await.unwrap();
    assert!(config.data.unwrap()["config.yaml"].contains("max_body_size: 200mb"));
    let after = h.api::<Deployment>().get("npm").await.unwrap();
    let checksum = |d: &Deployment| {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()[CONFIG_CHECKSUM_ANNOTATION]
            .clone()
    };
    assert_ne!(checksum(&before), checksum(&after), "a config change rolls the pods");
    let image = after.spec.unwrap().template.spec.unwrap().containers[0].image.clone();
    assert_eq!(image.as_deref(), Some("registry.example.com/npm-registry-server:next"));
}

#[tokio::test]
async fn deleted_child_is_recreated_and_only_it() {
    let h = Harness::new(vec![registry_json("npm", &s3_spec())]).await;
    h.reconcile("npm").await.unwrap();
    h.api::<Service>()
        .delete("npm", &DeleteParams::default())
        .await
        .unwrap();
    h.take_writes();

    h.reconcile("npm").await.unwrap();
    assert_eq!(h.take_writes(), ["patch Service npm"]);
    assert!(owned_by_registry(&h.api::<Service>().get("npm").await.unwrap()));
}

#[tokio::test]
async fn edited_child_is_repaired() {
    let h = Harness::new(vec![registry_json("npm", &s3_spec())]).await;
    h.reconcile("npm").await.unwrap();
    let patch = json!({"spec": {"replicas": 7}});
    h.api::<Deployment>()
        .patch("npm", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    h.take_writes();

    h.reconcile("npm").await.unwrap();
    assert_eq!(h.take_writes(), ["patch Deployment npm"]);
    assert_eq!(
        h.api::<Deployment>().get("npm").await.unwrap().spec.unwrap().replicas,
        Some(2)
    );
}

#[tokio::test]
async fn children_no_longer_wanted_are_deleted() {
    let mut spec = s3_spec();
    spec.ingress = Some(IngressSpec {
        host: Some("npm.example.com".into()),
        ..IngressSpec::default()
    });
    let h = Harness::new(vec![registry_json("npm", &spec)]).await;
    h.reconcile("npm").await.unwrap();
    assert!(h.api::<Ingress>().get_opt("npm").await.unwrap().is_some());
    assert!(h.api::<PodDisruptionBudget>().get_opt("npm").await.unwrap().is_some());

    spec.ingress = None;
    spec.replicas = 1;
    h.set_spec("npm", &spec).await;
    h.reconcile("npm").await.unwrap();
    let writes = h.take_writes();
    assert!(writes.contains(&"delete npm".to_string()), "{writes:?}");
    assert!(h.api::<Ingress>().get_opt("npm").await.unwrap().is_none());
    assert!(h.api::<PodDisruptionBudget>().get_opt("npm").await.unwrap().is_none());
}

#[tokio::test]
async fn apply_error_sets_degraded_and_fails_the_reconcile() {
    let h = Harness::new(vec![registry_json("npm", &volume_spec())]).await;
    h.fail_deployment.store(true, Ordering::SeqCst);
    let error = h.reconcile("npm").await.expect_err("the apply error surfaces");
    assert!(
        matches!(error, Error::Apply { ref kind, .. } if kind == "Deployment"),
        "{error}"
    );

    let registry = h.registry("npm").await;
    assert_eq!(condition(&registry, "Degraded"), ("True".into(), "ApplyFailed".into()));
    assert_eq!(condition(&registry, "Ready"), ("False".into(), "ApplyFailed".into()));
    assert_eq!(condition(&registry, "Stalled").0, "True");

    // Recovery clears Degraded.
    h.fail_deployment.store(false, Ordering::SeqCst);
    h.reconcile("npm").await.unwrap();
    let registry = h.registry("npm").await;
    assert_eq!(condition(&registry, "Degraded").0, "False");
}

#[tokio::test]
async fn invalid_spec_creates_nothing_and_reports_why() {
    let mut spec = volume_spec();
    spec.replicas = 3; // a ReadWriteOnce volume takes one pod (CEL refuses this on a real API server)
    let h = Harness::new(vec![registry_json("npm", &spec)]).await;
    let error = h.reconcile("npm").await.expect_err("invalid");
    assert!(matches!(error, Error::Build(_)), "{error}");
    assert_eq!(h.take_writes(), ["patch-status npm"]);
    let registry = h.registry("npm").await;
    assert_eq!(condition(&registry, "Degraded"), ("True".into(), "InvalidSpec".into()));
}

#[tokio::test]
async fn malformed_object_becomes_a_condition_not_a_dead_watch() {
    let mut object = registry_json("npm", &volume_spec());
    object["spec"]["storage"]["volume"]["accessMode"] = json!("ReadWriteSometimes");
    let h = Harness::new(vec![object]).await;
    // The watch still lists it: the guard holds the error instead of failing the stream.
    let listed = h
        .api::<DeserializeGuard<NpmRegistry>>()
        .list(&Default::default())
        .await
        .unwrap();
    assert!(listed.items[0].0.is_err());

    let error = h.reconcile("npm").await.expect_err("malformed");
    assert!(matches!(error, Error::Malformed(_)), "{error}");
    let raw: Api<kube::api::DynamicObject> =
        Api::namespaced_with(h.client.clone(), NS, &kube::api::ApiResource::erase::<NpmRegistry>(&()));
    let status = raw.get("npm").await.unwrap().data["status"].clone();
    let degraded = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Degraded")
        .unwrap()
        .clone();
    assert_eq!(degraded["status"], "True");
    assert_eq!(degraded["reason"], "InvalidSpec");
    assert!(
        degraded["message"].as_str().unwrap().contains("ReadWriteSometimes"),
        "{degraded}"
    );
}

#[tokio::test]
async fn retained_pvc_has_no_owner_reference() {
    let mut spec = volume_spec();
    spec.storage.volume = Some(VolumeStorage {
        retain_on_delete: true,
        ..VolumeStorage::default()
    });
    let h = Harness::new(vec![registry_json("npm", &spec)]).await;
    h.reconcile("npm").await.unwrap();
    let pvc = h.api::<PersistentVolumeClaim>().get("npm-storage").await.unwrap();
    assert!(pvc.owner_references().is_empty());
    assert!(owned_by_registry(&h.api::<Deployment>().get("npm").await.unwrap()));
}

#[tokio::test]
async fn events_report_what_was_done_and_what_failed() {
    use k8s_openapi::api::events::v1::Event;
    let h = Harness::new(vec![registry_json("npm", &volume_spec())]).await;
    h.reconcile("npm").await.unwrap();
    h.fail_deployment.store(true, Ordering::SeqCst);
    let mut spec = volume_spec();
    spec.log_level = Some(operator::crd::LogLevel::Debug);
    h.set_spec("npm", &spec).await;
    h.reconcile("npm").await.unwrap_err();

    let events = h.api::<Event>().list(&Default::default()).await.unwrap().items;
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert!(seen.contains(&("Normal".into(), "Created".into())), "{seen:?}");
    assert!(seen.contains(&("Normal".into(), "Updated".into())), "{seen:?}");
    assert!(seen.contains(&("Warning".into(), "ApplyFailed".into())), "{seen:?}");
    assert!(
        events
            .iter()
            .all(|e| e.regarding.as_ref().unwrap().kind.as_deref() == Some("NpmRegistry"))
    );
}
