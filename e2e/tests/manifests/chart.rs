//! The Helm chart (`charts/npm-registry-operator`): lint, valid objects with default and
//! every-option values, the operator pod's shape, RBAC, the values schema and the CRD copies.

use std::collections::BTreeSet;

use serde_json::json;

use super::support::*;

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
