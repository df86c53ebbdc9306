//! Helpers for the cluster suite: find the cluster, install the CRD, run the operator in-process,
//! give each test its own namespace, and poll until something holds; and (`container`) run the
//! rendered server pod in podman.

pub mod container;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use operator::crd::NpmRegistry;
use serde_json::Value;

const FIELD_MANAGER: &str = "npm-registry-e2e";

/// The cluster `KUBECONFIG` names, or `None` after printing why the test is skipped.
pub async fn cluster() -> Option<Client> {
    if std::env::var_os("KUBECONFIG").is_none() {
        println!("no cluster: skipped (set KUBECONFIG to run the e2e suite)");
        return None;
    }
    let client = Client::try_default()
        .await
        .expect("KUBECONFIG is set but names no usable cluster");
    Some(client)
}

/// How long to wait for the cluster to converge (`E2E_TIMEOUT_SECS`, default 180).
pub fn timeout() -> Duration {
    let secs = std::env::var("E2E_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    Duration::from_secs(secs)
}

/// Polls `check` every second until it returns `Some`, or panics after [`timeout`] saying `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Installs (server-side applies) the CRD and waits until it is established.
pub async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = operator::crd::crd();
    let name = crd.metadata.name.clone().unwrap();
    crds.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&crd))
        .await
        .expect("the API server accepts the CRD (a structural schema with valid CEL)");
    eventually("the CRD to be established", || {
        let crds = crds.clone();
        let name = name.clone();
        async move {
            let crd = crds.get(&name).await.ok()?;
            let established = crd
                .status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            established.then_some(())
        }
    })
    .await;
}

/// The cluster suite's fixture, one call per test: the cluster (`None` when there is none: the
/// test is skipped), the CRD installed, and a namespace of the test's own with the operator
/// watching it.
pub async fn setup(prefix: &str) -> Option<TestNamespace> {
    let client = cluster().await?;
    install_crd(&client).await;
    Some(TestNamespace::new(&client, prefix).await)
}

/// A namespace of its own for one test, deleted on drop (with everything in it).
pub struct TestNamespace {
    pub name: String,
    client: Client,
    operator: Option<tokio::task::JoinHandle<()>>,
    /// The in-process operator's metrics (its reconciles and child writes); `None` when an
    /// external operator runs.
    pub metrics: Option<Arc<operator::telemetry::Metrics>>,
}

impl TestNamespace {
    /// Creates the namespace and, unless `E2E_EXTERNAL_OPERATOR` is set (an operator already runs in
    /// the cluster, for example from the chart on EKS), starts the operator in-process watching it.
    pub async fn new(client: &Client, prefix: &str) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("npmreg-e2e-{prefix}-{nanos:x}");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.clone());
        ns.metadata.labels = Some([("app.kubernetes.io/part-of".to_string(), "npm-registry-e2e".to_string())].into());
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .expect("create the test namespace");
        let metrics = std::env::var_os("E2E_EXTERNAL_OPERATOR")
            .is_none()
            .then(|| Arc::new(operator::telemetry::Metrics::default()));
        let operator = metrics.clone().map(|metrics| {
            let client = client.clone();
            let ns = name.clone();
            tokio::spawn(async move { operator::controller::run(client, Some(ns), metrics).await })
        });
        TestNamespace {
            name,
            client: client.clone(),
            operator,
            metrics,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Creates an NpmRegistry from a manifest, in this namespace.
    pub async fn create(&self, mut manifest: Value) -> NpmRegistry {
        manifest["metadata"]["namespace"] = self.name.clone().into();
        let registry: NpmRegistry = serde_json::from_value(manifest).expect("a valid NpmRegistry manifest");
        self.api::<NpmRegistry>()
            .create(&PostParams::default(), &registry)
            .await
            .expect("create the NpmRegistry")
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if let Some(operator) = self.operator.take() {
            operator.abort();
        }
        if std::env::var_os("E2E_KEEP_NAMESPACES").is_some() {
            return;
        }
        let name = self.name.clone();
        // Drop cannot await: delete from a short-lived thread with its own runtime and its own
        // client (the test's client is driven by the test's runtime, which this thread blocks).
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    if let Ok(client) = Client::try_default().await {
                        let namespaces: Api<Namespace> = Api::all(client);
                        let _ = namespaces.delete(&name, &DeleteParams::background()).await;
                    }
                })
        })
        .join();
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every document of every YAML file in `config/samples`, with its file name.
pub fn samples() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("config/samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|path| documents(path).into_iter().map(move |d| (file_name(path), d)))
        .collect()
}

/// Every YAML document in `path` as JSON.
pub fn documents(path: &std::path::Path) -> Vec<Value> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}
