//! The operator against the cluster `KUBECONFIG` names (kind, k3d, EKS). Every test prints
//! `no cluster: skipped` and passes when `KUBECONFIG` is unset. See e2e/README.md.

use std::fmt::Debug;
use std::time::Duration;

use e2e::{TestNamespace, cluster, documents, eventually, install_crd, repo_root, samples};
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
    let Some(client) = cluster().await else { return };
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "cel").await;
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
        client.clone(),
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
    let Some(client) = cluster().await else { return };
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "samples").await;
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
    let Some(client) = cluster().await else { return };
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "change").await;
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
    let Some(client) = cluster().await else { return };
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "delete").await;
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
    let Some(client) = cluster().await else { return };
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "unready").await;
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
