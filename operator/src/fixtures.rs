//! Test fixtures shared by the unit tests and the integration tests (`tests/`): NpmRegistry
//! objects and specs, and [`FakeApi`], one scripted fake API server (kube-fake-client) that records
//! every write and can refuse the apply of chosen kinds. Built for `cfg(test)` and with the
//! `fixtures` feature (the crate's own dev-dependency on itself turns it on for `tests/`).

use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::{reflector, watcher};
use kube_fake_client::{ClientBuilder, Error as FakeError, interceptor};
use serde_json::json;

use crate::cache::Caches;
use crate::children::{ChildKind, ChildObject, KindVisitor};
use crate::controller::{Context, Error, reconcile};
use crate::crd::{NpmRegistry, NpmRegistrySpec, S3Storage, StorageSpec, VolumeStorage};
use crate::telemetry::Metrics;

/// The namespace of every fixture.
pub const NS: &str = "team";
/// The uid of every fixture registry.
pub const UID: &str = "2f6d1e3a-1111-4a4a-9b9b-0123456789ab";

/// An NpmRegistry `npm` in [`NS`] with `spec`, as the API server would hand it over.
pub fn registry(spec: NpmRegistrySpec) -> NpmRegistry {
    let mut registry = NpmRegistry::new("npm", spec);
    registry.metadata.namespace = Some(NS.into());
    registry.metadata.uid = Some(UID.into());
    registry.metadata.generation = Some(1);
    registry
}

/// A fake API server that records every write and GET and can refuse the apply of chosen kinds.
pub struct FakeApi {
    pub client: Client,
    pub writes: Arc<Mutex<Vec<String>>>,
    pub gets: Arc<Mutex<Vec<String>>>,
    /// Kinds whose patches fail: a webhook refusing them (500) or an immutable field (422).
    pub failing: Arc<Mutex<Vec<(&'static str, u16)>>>,
    pub ctx: Arc<Context>,
}

impl FakeApi {
    pub async fn new(seed: Vec<serde_json::Value>) -> Self {
        let writes: Arc<Mutex<Vec<String>>> = Arc::default();
        let gets: Arc<Mutex<Vec<String>>> = Arc::default();
        let failing: Arc<Mutex<Vec<(&'static str, u16)>>> = Arc::default();
        let record = |writes: &Arc<Mutex<Vec<String>>>, entry: String| writes.lock().unwrap().push(entry);
        let (w1, w2, w3, w4, w5, w6) = (
            writes.clone(),
            writes.clone(),
            writes.clone(),
            writes.clone(),
            writes.clone(),
            writes.clone(),
        );
        let g = gets.clone();
        let fail = failing.clone();
        let funcs = interceptor::Funcs::new()
            .create(move |c| {
                record(&w1, format!("create {}", c.object["kind"].as_str().unwrap_or("?")));
                Ok(None)
            })
            .get(move |c| {
                g.lock().unwrap().push(c.name.to_string());
                Ok(None)
            })
            .patch(move |c| {
                let kind = c.patch["kind"].as_str().unwrap_or("?").to_string();
                if let Some((_, code)) = fail.lock().unwrap().iter().find(|(k, _)| *k == kind) {
                    return Err(match code {
                        422 => FakeError::ImmutableField { field: "spec".into() },
                        _ => FakeError::Internal(format!("admission webhook denied the {kind}")),
                    });
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
        FakeApi {
            client,
            writes,
            gets,
            failing,
            ctx,
        }
    }

    pub fn fail(&self, kind: &'static str, code: u16) {
        self.failing.lock().unwrap().push((kind, code));
    }

    pub fn heal(&self) {
        self.failing.lock().unwrap().clear();
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Reads the NpmRegistry as the controller's watch would, and reconciles it.
    pub async fn reconcile(&self, name: &str) -> Result<kube::runtime::controller::Action, Error> {
        self.reconcile_with(name, self.ctx.clone()).await
    }

    pub async fn reconcile_with(
        &self,
        name: &str,
        ctx: Arc<Context>,
    ) -> Result<kube::runtime::controller::Action, Error> {
        let object = self
            .api::<DeserializeGuard<NpmRegistry>>()
            .get(name)
            .await
            .expect("registry exists");
        self.gets.lock().unwrap().clear();
        reconcile(Arc::new(object), ctx).await
    }

    /// Writes since the last call, events excluded (they are reported, not state).
    pub fn take_writes(&self) -> Vec<String> {
        let mut writes = self.writes.lock().unwrap();
        std::mem::take(&mut *writes)
            .into_iter()
            .filter(|w| !w.contains("Event"))
            .collect()
    }

    pub async fn events(&self) -> Vec<Event> {
        self.api::<Event>().list(&Default::default()).await.unwrap().items
    }

    pub async fn registry(&self, name: &str) -> NpmRegistry {
        self.api::<NpmRegistry>().get(name).await.unwrap()
    }

    /// Replaces the whole spec, as `kubectl apply` of an edited manifest would.
    pub async fn set_spec(&self, name: &str, spec: &NpmRegistrySpec) {
        let mut registry = self.registry(name).await;
        registry.spec = spec.clone();
        self.api::<NpmRegistry>()
            .replace(name, &Default::default(), &registry)
            .await
            .unwrap();
        self.take_writes();
    }

    /// Stores filled from what the fake API server holds, as the controller's reflectors would be.
    pub async fn caches(&self) -> (Caches, Vec<Box<dyn std::any::Any + Send>>) {
        struct Fill<'a> {
            client: &'a Client,
            caches: &'a mut Caches,
            writers: &'a mut Vec<Box<dyn std::any::Any + Send>>,
        }
        impl<'a> KindVisitor for Fill<'a> {
            type Output = futures::future::BoxFuture<'a, ()>;
            fn visit<K: ChildObject>(self) -> Self::Output {
                Box::pin(async move {
                    let (store, mut writer) = reflector::store::<K>();
                    let api: Api<K> = Api::namespaced(self.client.clone(), NS);
                    self.caches.insert(store);
                    let list = api.list(&Default::default()).await.unwrap();
                    writer.apply_watcher_event(&watcher::Event::Init);
                    for object in list.items {
                        writer.apply_watcher_event(&watcher::Event::InitApply(object));
                    }
                    writer.apply_watcher_event(&watcher::Event::InitDone);
                    self.writers.push(Box::new(writer));
                })
            }
        }
        let mut caches = Caches::default();
        let mut writers = Vec::new();
        for kind in ChildKind::ALL {
            kind.visit(Fill {
                client: &self.client,
                caches: &mut caches,
                writers: &mut writers,
            })
            .await;
        }
        let (pods, mut writer) = reflector::store::<Pod>();
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        writers.push(Box::new(writer));
        caches.set_pods(pods);
        (caches, writers)
    }
}

pub fn registry_json(name: &str, spec: &NpmRegistrySpec) -> serde_json::Value {
    json!({
        "apiVersion": "npmregistry.dev/v1alpha1",
        "kind": "NpmRegistry",
        "metadata": {"name": name, "namespace": NS, "uid": UID, "generation": 1},
        "spec": spec,
    })
}

pub fn volume_spec() -> NpmRegistrySpec {
    NpmRegistrySpec {
        replicas: 1,
        storage: StorageSpec {
            volume: Some(VolumeStorage::default()),
            s3: None,
        },
        ..NpmRegistrySpec::default()
    }
}

pub fn s3_spec() -> NpmRegistrySpec {
    NpmRegistrySpec {
        replicas: 2,
        storage: StorageSpec {
            volume: None,
            s3: Some(S3Storage {
                bucket: "npm-bucket".into(),
                ..S3Storage::default()
            }),
        },
        ..NpmRegistrySpec::default()
    }
}
