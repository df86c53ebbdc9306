//! The operator against the cluster `KUBECONFIG` names (kind, k3d, EKS, or a bare API server with
//! a controller manager and no kubelet). Every test prints `no cluster: skipped` and passes when
//! `KUBECONFIG` is unset. Each test's setup is `e2e::setup` (the cluster, the CRD, a namespace of
//! its own with the operator watching it), written once. See e2e/README.md.

use std::fmt::Debug;
use std::time::Duration;

use e2e::{TestNamespace, cluster, documents, eventually, repo_root, samples, setup};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use operator::crd::NpmRegistry;
use operator::resources::{CONFIG_CHECKSUM_ANNOTATION, Desired};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn sample(file: &str) -> Value {
    samples()
        .into_iter()
        .find(|(f, _)| f == file)
        .unwrap_or_else(|| panic!("no sample {file}"))
        .1
}

/// The children the builder wants for the live registry.
fn desired(registry: &NpmRegistry) -> Desired {
    operator::resources::build(registry).expect("the sample builds")
}

/// `Some(())` once `name` exists and is controlled by `owner_uid` (or has no owner when `None`).
async fn owned<K>(api: Api<K>, name: String, owner_uid: Option<String>) -> Option<()>
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    let object = api.get_opt(&name).await.ok()??;
    let owners = object.owner_references();
    let ok = match owner_uid {
        Some(uid) => owners
            .iter()
            .any(|o| o.uid == uid && o.kind == "NpmRegistry" && o.controller == Some(true)),
        None => owners.is_empty(),
    };
    ok.then_some(())
}

/// Waits until the child `K` named like `child` exists with the expected owner.
async fn wait_owned<K>(ns: &TestNamespace, child: &K, owner_uid: Option<&str>)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
{
    let name = child.name_any();
    let what = format!("{} {name} (owner {owner_uid:?})", K::kind(&()));
    eventually(&what, || {
        owned(ns.api::<K>(), name.clone(), owner_uid.map(String::from))
    })
    .await;
}

async fn wait_for_children(ns: &TestNamespace, registry: &NpmRegistry) {
    let uid = registry.uid().unwrap();
    let uid = Some(uid.as_str());
    let want = desired(registry);
    wait_owned(ns, &want.config_map, uid).await;
    wait_owned(ns, &want.service_account, uid).await;
    wait_owned(ns, &want.service, uid).await;
    wait_owned(ns, &want.deployment, uid).await;
    if let Some(pvc) = &want.pvc {
        // A retained claim carries no owner, so deleting the registry keeps it.
        wait_owned(ns, pvc, pvc.metadata.owner_references.as_ref().and(uid)).await;
    }
    if let Some(ingress) = &want.ingress {
        wait_owned(ns, ingress, uid).await;
    }
    if let Some(pdb) = &want.pdb {
        wait_owned(ns, pdb, uid).await;
    }
    if let Some(hpa) = &want.hpa {
        wait_owned(ns, hpa, uid).await;
    }
}

/// Waits for a `Ready` condition for the current generation and returns (status, reason).
async fn wait_for_ready_condition(ns: &TestNamespace, name: &str) -> (String, String, String) {
    let api = ns.api::<NpmRegistry>();
    eventually(&format!("status.conditions[Ready] on {name}"), || {
        let api = api.clone();
        async move {
            let registry = api.get(name).await.ok()?;
            let status = registry.status?;
            if status.observed_generation != registry.metadata.generation {
                return None;
            }
            let ready = status.conditions.into_iter().find(|c| c.type_ == "Ready")?;
            Some((ready.status, ready.reason, ready.message))
        }
    })
    .await
}

fn checksum(deployment: &Deployment) -> String {
    let template = &deployment.spec.as_ref().unwrap().template;
    template.metadata.as_ref().unwrap().annotations.as_ref().unwrap()[CONFIG_CHECKSUM_ANNOTATION].clone()
}

#[tokio::test]
async fn api_server_accepts_the_crd_and_its_cel_rules_refuse_invalid_objects() {
    let Some(ns) = setup("cel").await else { return };
    let api = ns.api::<NpmRegistry>();
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    for (file, mut doc) in samples() {
        doc["metadata"]["namespace"] = ns.name.clone().into();
        let registry: NpmRegistry = serde_json::from_value(doc).unwrap();
        api.create(&dry_run, &registry)
            .await
            .unwrap_or_else(|e| panic!("{file} refused: {e}"));
    }
    let invalid = documents(&repo_root().join("operator/tests/fixtures/invalid-npmregistry.yaml"));
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        ns.client().clone(),
        &ns.name,
        &kube::api::ApiResource::erase::<NpmRegistry>(&()),
    );
    for doc in invalid {
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        let object: kube::api::DynamicObject = serde_json::from_value(doc).unwrap();
        let result = raw.create(&dry_run, &object).await;
        assert!(result.is_err(), "{name} was accepted");
        println!("{name}: refused: {}", result.unwrap_err());
    }
}

#[tokio::test]
async fn every_sample_gets_its_children_with_owner_references_and_a_status() {
    let Some(ns) = setup("samples").await else { return };
    let mut created = Vec::new();
    for (file, doc) in samples() {
        println!("applying {file}");
        created.push(ns.create(doc).await);
    }
    let storage_kinds: Vec<_> = created.iter().map(|r| r.spec.storage.s3.is_some()).collect();
    assert!(
        storage_kinds.contains(&true) && storage_kinds.contains(&false),
        "volume and S3 samples"
    );
    for registry in &created {
        wait_for_children(&ns, registry).await;
        // Status is written whether or not the pods can start (no Secrets, no S3, no nodes…).
        let (status, reason, message) = wait_for_ready_condition(&ns, &registry.name_any()).await;
        assert!(!reason.is_empty(), "Ready carries a reason");
        println!(
            "{}: Ready={status} reason={reason} message={message}",
            registry.name_any()
        );
    }
}

#[tokio::test]
async fn spec_change_changes_the_deployment_and_a_deleted_child_comes_back() {
    let Some(ns) = setup("change").await else { return };
    let registry = ns.create(sample("npmregistry-volume.yaml")).await;
    let name = registry.name_any();
    wait_for_children(&ns, &registry).await;
    let deployments = ns.api::<Deployment>();
    let before = checksum(&deployments.get(&name).await.unwrap());

    let patch = json!({"spec": {"maxBodySize": "123mb", "podAnnotations": {"e2e": "changed"}}});
    ns.api::<NpmRegistry>()
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    eventually("the Deployment to roll on the config change", || {
        let deployments = deployments.clone();
        let (name, before) = (name.clone(), before.clone());
        async move {
            let d = deployments.get(&name).await.ok()?;
            let annotations = d.spec.as_ref()?.template.metadata.as_ref()?.annotations.clone()?;
            (checksum(&d) != before && annotations.get("e2e").map(String::as_str) == Some("changed")).then_some(())
        }
    })
    .await;
    let config = ns.api::<ConfigMap>().get(&format!("{name}-config")).await.unwrap();
    assert!(config.data.unwrap()["config.yaml"].contains("max_body_size: 123mb"));

    // Owns(Service): deleting a child is repaired.
    let services = ns.api::<Service>();
    let old_uid = services.get(&name).await.unwrap().uid();
    services.delete(&name, &DeleteParams::default()).await.unwrap();
    eventually("the deleted Service to be recreated", || {
        let services = services.clone();
        let (name, old_uid) = (name.clone(), old_uid.clone());
        async move {
            services
                .get_opt(&name)
                .await
                .ok()?
                .filter(|s| s.uid() != old_uid)
                .map(drop)
        }
    })
    .await;
}

#[tokio::test]
async fn deleting_the_registry_removes_children_and_keeps_a_retained_pvc() {
    let Some(ns) = setup("delete").await else { return };
    let mut owned_pvc = sample("npmregistry-volume.yaml");
    owned_pvc["metadata"]["name"] = "npm-owned".into();
    let mut kept_pvc = sample("npmregistry-volume.yaml");
    kept_pvc["metadata"]["name"] = "npm-kept".into();
    kept_pvc["spec"]["storage"]["volume"]["retainOnDelete"] = true.into();
    let owned = ns.create(owned_pvc).await;
    let kept = ns.create(kept_pvc).await;
    wait_for_children(&ns, &owned).await;
    wait_for_children(&ns, &kept).await;

    let registries = ns.api::<NpmRegistry>();
    registries
        .delete("npm-owned", &DeleteParams::foreground())
        .await
        .unwrap();
    registries
        .delete("npm-kept", &DeleteParams::foreground())
        .await
        .unwrap();
    for name in ["npm-owned", "npm-kept"] {
        let deployments = ns.api::<Deployment>();
        let config_maps = ns.api::<ConfigMap>();
        let services = ns.api::<Service>();
        eventually(&format!("the children of {name} to be garbage-collected"), || {
            let (deployments, config_maps, services) = (deployments.clone(), config_maps.clone(), services.clone());
            async move {
                let gone = deployments.get_opt(name).await.ok()?.is_none()
                    && config_maps.get_opt(&format!("{name}-config")).await.ok()?.is_none()
                    && services.get_opt(name).await.ok()?.is_none();
                gone.then_some(())
            }
        })
        .await;
    }
    let claims = ns.api::<PersistentVolumeClaim>();
    eventually("the owned PVC to be garbage-collected", || {
        let claims = claims.clone();
        async move {
            let claim = claims.get_opt("npm-owned-storage").await.ok()?;
            // A claim mounted by a terminating pod waits on the pvc-protection finalizer.
            claim
                .is_none_or(|c| c.metadata.deletion_timestamp.is_some())
                .then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let kept = claims
        .get_opt("npm-kept-storage")
        .await
        .unwrap()
        .expect("the retained PVC is kept");
    assert!(kept.metadata.deletion_timestamp.is_none());
}

#[tokio::test]
async fn pods_that_cannot_start_give_ready_false_with_a_reason() {
    let Some(ns) = setup("unready").await else { return };
    let mut manifest = sample("npmregistry-volume.yaml");
    // An image that cannot be pulled: the pods never start, yet status must say why.
    manifest["spec"]["image"] = "registry.invalid/npm-registry-server:missing".into();
    let registry = ns.create(manifest).await;
    wait_for_children(&ns, &registry).await;
    let (status, reason, message) = wait_for_ready_condition(&ns, &registry.name_any()).await;
    assert_eq!(
        status, "False",
        "Ready must be False while no pod runs ({reason}: {message})"
    );
    assert!(!reason.is_empty());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (status, reason, _) = wait_for_ready_condition(&ns, &registry.name_any()).await;
    assert_eq!(status, "False", "still not ready: {reason}");
}

// ---- Operator in production (issue 18): no endless re-apply, events per child, PVC edits that
// cannot block, retained claims watched, a fatal metrics port, spec.cache sizing the pod.

/// For each child: its kind, name, generation and the time our field manager last wrote it.
async fn our_writes(ns: &TestNamespace, registry: &NpmRegistry) -> Vec<(String, String, Option<i64>, String)> {
    fn entry<K: Resource + ResourceExt>(
        kind: &str,
        object: Option<K>,
    ) -> Option<(String, String, Option<i64>, String)> {
        let object = object?;
        let time = object
            .managed_fields()
            .iter()
            .filter(|f| f.manager.as_deref() == Some(operator::apply::FIELD_MANAGER))
            .map(|f| format!("{:?}/{:?}", f.operation, f.time))
            .collect::<Vec<_>>()
            .join(",");
        Some((kind.to_string(), object.name_any(), object.meta().generation, time))
    }
    let want = desired(registry);
    let mut writes = Vec::new();
    writes.extend(entry(
        "ConfigMap",
        ns.api::<ConfigMap>()
            .get_opt(&want.config_map.name_any())
            .await
            .unwrap(),
    ));
    writes.extend(entry(
        "ServiceAccount",
        ns.api::<k8s_openapi::api::core::v1::ServiceAccount>()
            .get_opt(&want.service_account.name_any())
            .await
            .unwrap(),
    ));
    writes.extend(entry(
        "Service",
        ns.api::<Service>().get_opt(&want.service.name_any()).await.unwrap(),
    ));
    writes.extend(entry(
        "Deployment",
        ns.api::<Deployment>()
            .get_opt(&want.deployment.name_any())
            .await
            .unwrap(),
    ));
    if let Some(pvc) = &want.pvc {
        writes.extend(entry(
            "PersistentVolumeClaim",
            ns.api::<PersistentVolumeClaim>()
                .get_opt(&pvc.name_any())
                .await
                .unwrap(),
        ));
    }
    writes
}

/// Events the operator posted in the namespace.
async fn operator_events(ns: &TestNamespace) -> Vec<k8s_openapi::api::events::v1::Event> {
    let events = ns
        .api::<k8s_openapi::api::events::v1::Event>()
        .list(&Default::default())
        .await
        .unwrap();
    events
        .items
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some(operator::apply::FIELD_MANAGER))
        .collect()
}

/// Triggers one reconcile by touching an annotation, and waits until it ran (in-process operator:
/// its reconcile count; external: a few seconds).
async fn poke(ns: &TestNamespace, name: &str, i: usize) {
    let before = ns.metrics.as_ref().map(|m| m.reconciles());
    let patch = json!({"metadata": {"annotations": {"e2e.npmregistry.dev/poke": i.to_string()}}});
    ns.api::<NpmRegistry>()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    match (before, ns.metrics.clone()) {
        (Some(before), Some(metrics)) => {
            eventually("a reconcile after the poke", || {
                let metrics = metrics.clone();
                async move { (metrics.reconciles() > before).then_some(()) }
            })
            .await;
            // Let it finish its writes, if it makes any.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        _ => tokio::time::sleep(Duration::from_secs(5)).await,
    }
}

/// Waits until our writes to the children and the registry's status stop changing for 5 s (the
/// first reconciles after a create settle, and so do the Deployment controller's first verdicts).
async fn settled(ns: &TestNamespace, registry: &NpmRegistry) {
    let deadline = tokio::time::Instant::now() + e2e::timeout();
    let snapshot = || async {
        let status = ns.api::<NpmRegistry>().get(&registry.name_any()).await.unwrap().status;
        (our_writes(ns, registry).await, serde_json::to_string(&status).unwrap())
    };
    let mut last = snapshot().await;
    let mut quiet_since = tokio::time::Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(5) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the children never settled: {last:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = snapshot().await;
        if now != last {
            last = now;
            quiet_since = tokio::time::Instant::now();
        }
    }
}

#[tokio::test]
async fn five_reconciles_of_an_unchanged_registry_with_non_canonical_quantities_write_nothing() {
    let Some(ns) = setup("quiet").await else { return };
    let mut manifest = sample("npmregistry-volume.yaml");
    // Spellings the API server rewrites (500m, 1Gi, 1536Mi) and a cache size in GiB.
    manifest["spec"]["resources"] =
        json!({"requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"memory": "1.5Gi"}});
    manifest["spec"]["cache"] = json!({"packuments": "0.25Gi"});
    let registry = ns.create(manifest).await;
    let name = registry.name_any();
    wait_for_children(&ns, &registry).await;
    wait_for_ready_condition(&ns, &name).await;
    settled(&ns, &registry).await;
    let deployment = ns.api::<Deployment>().get(&name).await.unwrap();
    let resources = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .resources
        .clone()
        .unwrap();
    println!("live resources (canonical spelling): {resources:?}");

    let writes = our_writes(&ns, &registry).await;
    let events = operator_events(&ns).await.len();
    let sent = ns.metrics.as_ref().map(|m| m.writes());
    let status = ns.api::<NpmRegistry>().get(&name).await.unwrap().status;
    for i in 0..5 {
        poke(&ns, &name, i).await;
    }
    assert_eq!(our_writes(&ns, &registry).await, writes, "no child was written");
    assert_eq!(operator_events(&ns).await.len(), events, "no event posted");
    if let (Some(sent), Some(metrics)) = (sent, &ns.metrics) {
        assert_eq!(metrics.writes(), sent, "no apply was even sent");
    }
    assert_eq!(
        ns.api::<NpmRegistry>().get(&name).await.unwrap().status,
        status,
        "status unchanged"
    );
}

#[tokio::test]
async fn each_child_gets_an_event_of_its_own() {
    let Some(ns) = setup("events").await else { return };
    let registry = ns.create(sample("npmregistry-volume.yaml")).await;
    wait_for_children(&ns, &registry).await;
    let want = desired(&registry);
    let expected: Vec<String> = [
        ("ConfigMap", want.config_map.name_any()),
        ("ServiceAccount", want.service_account.name_any()),
        ("Service", want.service.name_any()),
        ("PersistentVolumeClaim", want.pvc.as_ref().unwrap().name_any()),
        ("Deployment", want.deployment.name_any()),
    ]
    .iter()
    .map(|(kind, name)| format!("Created {kind} {name}"))
    .collect();
    let events = eventually("an event per created child", || {
        let ns = &ns;
        let expected = expected.clone();
        async move {
            let events = operator_events(ns).await;
            let notes: Vec<String> = events.iter().filter_map(|e| e.note.clone()).collect();
            expected.iter().all(|e| notes.contains(e)).then_some(events)
        }
    })
    .await;
    for note in &expected {
        let matching: Vec<_> = events
            .iter()
            .filter(|e| e.note.as_deref() == Some(note.as_str()))
            .collect();
        assert_eq!(matching.len(), 1, "{note}: one event");
        let event = matching[0];
        assert_eq!(event.reason.as_deref(), Some("Created"));
        let related = event.related.as_ref().expect("the child is the related object");
        assert!(note.ends_with(&format!(
            "{} {}",
            related.kind.as_deref().unwrap(),
            related.name.as_deref().unwrap()
        )));
        assert!(
            event.series.is_none(),
            "{note} folded into a series: {:?}",
            event.series
        );
    }
}

#[tokio::test]
async fn immutable_claim_edits_are_refused_and_a_refused_claim_blocks_nothing() {
    let Some(ns) = setup("pvc").await else { return };
    let registry = ns.create(sample("npmregistry-volume.yaml")).await;
    let name = registry.name_any();
    wait_for_children(&ns, &registry).await;
    let api = ns.api::<NpmRegistry>();
    for (patch, why) in [
        (
            json!({"spec": {"storage": {"volume": {"accessMode": "ReadWriteMany"}}}}),
            "accessMode cannot change",
        ),
        (
            json!({"spec": {"storage": {"volume": {"storageClassName": "e2e-other"}}}}),
            "storageClassName cannot change",
        ),
        (
            json!({"spec": {"storage": {"volume": {"size": "1Gi"}}}}),
            "size cannot shrink",
        ),
    ] {
        let refused = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect_err("the API server refuses the edit");
        let message = refused.to_string();
        assert!(message.contains(why), "{patch}: {message}");
        println!("refused at admission: {why}");
    }

    // A growth the CRD allows can still be refused by the claim (an unbound claim, a class
    // without expansion): the image change in the same edit must reach the Deployment anyway.
    let patch = json!({"spec": {"storage": {"volume": {"size": "20Gi"}},
        "image": "registry.example.com/npm-registry-server:e2e-next"}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let deployments = ns.api::<Deployment>();
    eventually("the new image on the Deployment", || {
        let deployments = deployments.clone();
        let name = name.clone();
        async move {
            let d = deployments.get(&name).await.ok()?;
            let image = d.spec?.template.spec?.containers[0].image.clone()?;
            (image == "registry.example.com/npm-registry-server:e2e-next").then_some(())
        }
    })
    .await;
    let claim = ns
        .api::<PersistentVolumeClaim>()
        .get(&format!("{name}-storage"))
        .await
        .unwrap();
    let size = claim.spec.unwrap().resources.unwrap().requests.unwrap()["storage"]
        .0
        .clone();
    if size != "20Gi" {
        let (_, reason, message) = wait_for_condition(&ns, &name, "Degraded").await;
        assert_eq!(reason, "ApplyFailed");
        assert!(message.contains("PersistentVolumeClaim"), "{message}");
        println!("the claim refused the resize ({message}); the Deployment was updated all the same");
    } else {
        println!("the claim grew to 20Gi (its class allows expansion)");
    }
}

/// Waits for a condition of the current generation; (status, reason, message).
async fn wait_for_condition(ns: &TestNamespace, name: &str, type_: &str) -> (String, String, String) {
    let api = ns.api::<NpmRegistry>();
    eventually(&format!("status.conditions[{type_}] on {name}"), || {
        let api = api.clone();
        async move {
            let registry = api.get(name).await.ok()?;
            let status = registry.status?;
            if status.observed_generation != registry.metadata.generation {
                return None;
            }
            let c = status.conditions.into_iter().find(|c| c.type_ == type_)?;
            Some((c.status, c.reason, c.message))
        }
    })
    .await
}

#[tokio::test]
async fn a_deleted_retained_claim_is_back_within_seconds() {
    let Some(ns) = setup("retained").await else { return };
    let mut manifest = sample("npmregistry-volume.yaml");
    manifest["spec"]["storage"]["volume"]["retainOnDelete"] = true.into();
    // No pod: a claim in use by a pod waits on its protection finalizer.
    manifest["spec"]["replicas"] = 0.into();
    let registry = ns.create(manifest).await;
    wait_for_children(&ns, &registry).await;
    let claims = ns.api::<PersistentVolumeClaim>();
    let claim_name = format!("{}-storage", registry.name_any());
    let old = claims.get(&claim_name).await.unwrap();
    assert!(old.owner_references().is_empty(), "a retained claim has no owner");
    let deleted = tokio::time::Instant::now();
    claims.delete(&claim_name, &DeleteParams::default()).await.unwrap();
    let old_uid = old.uid();
    eventually("the retained claim to be recreated", || {
        let claims = claims.clone();
        let (name, old_uid) = (claim_name.clone(), old_uid.clone());
        async move {
            let claim = claims.get_opt(&name).await.ok()??;
            (claim.uid() != old_uid && claim.metadata.deletion_timestamp.is_none()).then_some(())
        }
    })
    .await;
    let took = deleted.elapsed();
    println!("the retained claim was back {took:?} after its deletion");
    assert!(
        took < Duration::from_secs(30),
        "watched by label, not repaired at the 300 s resync: {took:?}"
    );
}

#[tokio::test]
async fn a_taken_metrics_port_exits_non_zero_naming_the_address() {
    let Some(_client) = cluster().await else { return };
    let binary = std::env::var_os("NPM_REGISTRY_OPERATOR_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/debug/npm-registry-operator"));
    assert!(
        binary.is_file(),
        "the operator binary is not at {} (cargo build -p operator, or set NPM_REGISTRY_OPERATOR_BIN)",
        binary.display()
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(&binary)
            .args(["run", "--no-leader-election", "--metrics-addr", &addr.to_string()])
            .output(),
    )
    .await
    .expect("it exits at once")
    .unwrap();
    assert!(!output.status.success(), "{}", output.status);
    let logs = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains(&format!("cannot listen on {addr}")), "{logs}");
}

#[tokio::test]
async fn spec_cache_reaches_the_config_and_sizes_the_memory() {
    let Some(ns) = setup("cache").await else { return };
    let mut manifest = sample("npmregistry-volume.yaml");
    manifest["spec"]["cache"] = json!({"packuments": "256Mi", "tarballs": "64Mi"});
    let registry = ns.create(manifest).await;
    let name = registry.name_any();
    wait_for_children(&ns, &registry).await;
    let config = ns.api::<ConfigMap>().get(&format!("{name}-config")).await.unwrap();
    let file: registry_config::ConfigFile = serde_yaml::from_str(&config.data.unwrap()["config.yaml"]).unwrap();
    assert_eq!(file.packument_cache.unwrap().max_size, Some((256u64 << 20).into()));
    assert_eq!(file.tarball_cache.unwrap().max_size, Some((64u64 << 20).into()));
    let pages = match manifest_web_enabled(&ns, &name).await {
        true => registry_config::defaults::WEB_CACHE_SIZE / (1 << 20),
        false => 0,
    };
    let memory = (256 + 64) + pages + registry_config::defaults::MEMORY_OVERHEAD / (1 << 20);
    let deployment = ns.api::<Deployment>().get(&name).await.unwrap();
    let resources = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .resources
        .clone()
        .unwrap();
    for list in [resources.requests.unwrap(), resources.limits.unwrap()] {
        assert!(
            operator::quantity::same(&list["memory"].0, &format!("{memory}Mi")),
            "memory {} is the caches plus the overhead ({memory}Mi)",
            list["memory"].0
        );
    }
    // Memory the spec sets wins.
    let patch = json!({"spec": {"resources": {"limits": {"memory": "2Gi"}}}});
    ns.api::<NpmRegistry>()
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let deployments = ns.api::<Deployment>();
    eventually("the spec's memory limit on the Deployment", || {
        let deployments = deployments.clone();
        let name = name.clone();
        async move {
            let d = deployments.get(&name).await.ok()?;
            let resources = d.spec?.template.spec?.containers[0].resources.clone()?;
            let limit = resources.limits?.get("memory")?.0.clone();
            let derived_request = resources.requests.and_then(|r| r.get("memory").cloned());
            (operator::quantity::same(&limit, "2Gi") && derived_request.is_none()).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn an_autoscaled_registry_starts_at_min_replicas_and_keeps_them() {
    let Some(ns) = setup("hpa").await else { return };
    let mut manifest = sample("npmregistry-s3.yaml");
    manifest["spec"]["replicas"] = 2.into();
    let registry = ns.create(manifest).await;
    let name = registry.name_any();
    wait_for_children(&ns, &registry).await;
    // Fixed replicas → autoscaling: the count must not fall back to 1 when our manager lets go.
    let patch = json!({"spec": {"autoscaling": {"minReplicas": 3, "maxReplicas": 6}}});
    ns.api::<NpmRegistry>()
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let deployments = ns.api::<Deployment>();
    eventually(
        "the Deployment at minReplicas, not owned by the operator's manager",
        || {
            let deployments = deployments.clone();
            let name = name.clone();
            async move {
                let d = deployments.get(&name).await.ok()?;
                let ours = operator::apply::owns_field(
                    d.metadata.managed_fields.as_deref().unwrap_or_default(),
                    operator::apply::FIELD_MANAGER,
                    &["spec", "replicas"],
                );
                (d.spec?.replicas == Some(3) && !ours).then_some(())
            }
        },
    )
    .await;
    for i in 0..3 {
        poke(&ns, &name, i).await;
        let replicas = deployments.get(&name).await.unwrap().spec.unwrap().replicas;
        assert_eq!(
            replicas,
            Some(3),
            "still at minReplicas (no HPA controller acts on it here)"
        );
    }
    // A new autoscaled registry starts at its minimum too.
    let mut manifest = sample("npmregistry-s3.yaml");
    manifest["metadata"]["name"] = "npm-hpa-new".into();
    manifest["spec"]["autoscaling"] = json!({"minReplicas": 4, "maxReplicas": 6});
    ns.create(manifest).await;
    eventually("the new Deployment at minReplicas", || {
        let deployments = deployments.clone();
        async move { (deployments.get("npm-hpa-new").await.ok()?.spec?.replicas == Some(4)).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn status_says_why_pods_wait_and_where_to_reach_the_registry() {
    let Some(ns) = setup("why").await else { return };
    let registry = ns.create(sample("npmregistry-volume.yaml")).await;
    let name = registry.name_any();
    wait_for_children(&ns, &registry).await;
    let (status, reason, message) = wait_for_ready_condition(&ns, &name).await;
    println!("Ready={status} reason={reason}: {message}");
    let live = ns.api::<NpmRegistry>().get(&name).await.unwrap();
    assert_eq!(
        live.status.as_ref().unwrap().url.as_deref(),
        Some(format!("http://{name}.{}.svc:4873/", ns.name).as_str()),
        "without an Ingress the URL is the Service's"
    );
    if status == "True" {
        return;
    }
    // What the operator can see from the pods and the claim must be the reason.
    let claim = ns
        .api::<PersistentVolumeClaim>()
        .get(&format!("{name}-storage"))
        .await
        .unwrap();
    let bound = claim.status.and_then(|s| s.phase).as_deref() == Some("Bound");
    let pods = ns
        .api::<k8s_openapi::api::core::v1::Pod>()
        .list(&kube::api::ListParams::default().labels(&format!("app.kubernetes.io/instance={name}")))
        .await
        .unwrap();
    let scheduled_false = pods.items.iter().any(|p| {
        p.status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .any(|c| c.type_ == "PodScheduled" && c.status == "False")
    });
    if scheduled_false {
        assert!(message.contains("pod "), "the pod's scheduling verdict: {message}");
    } else if !bound {
        assert!(
            message.contains("PersistentVolumeClaim"),
            "the unbound claim: {reason}: {message}"
        );
    }
    assert!(!message.contains("Status {"), "no debug dump: {message}");
}

/// Whether the registry's web UI is on (its page cache then counts in the pod's memory).
async fn manifest_web_enabled(ns: &TestNamespace, name: &str) -> bool {
    let registry = ns.api::<NpmRegistry>().get(name).await.unwrap();
    registry.spec.web.and_then(|w| w.enable) != Some(false)
}
