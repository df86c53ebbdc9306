//! Reconcile against the scripted fake API server (`operator::fixtures::FakeApi`): create, no-op second pass, spec
//! change, child deleted, orphan removal, apply error → Degraded, invalid and malformed objects.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::DeserializeGuard;
use operator::children::ChildKind;
use operator::controller::{ChildAction, Context, Error};
use operator::crd::{IngressSpec, NpmRegistry, VolumeStorage};
use operator::fixtures::{FakeApi, NS, UID, registry_json, s3_spec, volume_spec};
use operator::resources::CONFIG_CHECKSUM_ANNOTATION;
use operator::telemetry::Metrics;
use serde_json::json;

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
    let h = FakeApi::new(vec![registry_json("npm", &volume_spec())]).await;
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
    let h = FakeApi::new(vec![registry_json("npm", &s3_spec())]).await;
    h.reconcile("npm").await.expect("first pass");
    let first = h.take_writes();
    assert!(!first.is_empty());

    h.reconcile("npm").await.expect("second pass");
    assert_eq!(h.take_writes(), Vec::<String>::new(), "a steady state must not write");
}

#[tokio::test]
async fn spec_change_updates_the_config_and_rolls_the_deployment() {
    let h = FakeApi::new(vec![registry_json("npm", &volume_spec())]).await;
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
    let h = FakeApi::new(vec![registry_json("npm", &s3_spec())]).await;
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
    let h = FakeApi::new(vec![registry_json("npm", &s3_spec())]).await;
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
    let h = FakeApi::new(vec![registry_json("npm", &spec)]).await;
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
    let h = FakeApi::new(vec![registry_json("npm", &volume_spec())]).await;
    h.fail("Deployment", 500);
    let error = h.reconcile("npm").await.expect_err("the apply error surfaces");
    let Error::Children { failures } = &error else {
        panic!("{error}")
    };
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(
        (failures[0].kind, failures[0].action),
        (ChildKind::Deployment, ChildAction::Apply)
    );
    assert!(
        failures[0].message.contains("admission webhook denied"),
        "{}",
        failures[0].message
    );

    let registry = h.registry("npm").await;
    assert_eq!(condition(&registry, "Degraded"), ("True".into(), "ApplyFailed".into()));
    assert_eq!(condition(&registry, "Ready"), ("False".into(), "ApplyFailed".into()));
    assert_eq!(condition(&registry, "Stalled").0, "True");
    let message = registry.status.unwrap().conditions[0].message.clone();
    assert!(message.starts_with("applying Deployment npm: "), "{message}");
    assert!(!message.contains("Status {"), "no debug dump in conditions: {message}");

    // Recovery clears Degraded.
    h.heal();
    h.reconcile("npm").await.unwrap();
    let registry = h.registry("npm").await;
    assert_eq!(condition(&registry, "Degraded").0, "False");
}

#[tokio::test]
async fn a_refused_pvc_change_does_not_block_the_deployment() {
    let h = FakeApi::new(vec![registry_json("npm", &volume_spec())]).await;
    h.reconcile("npm").await.unwrap();
    h.take_writes();

    // The claim's size changes and the API server refuses it (an older CRD without the transition
    // rules, or a class without expansion); the image change still reaches the Deployment.
    h.fail("PersistentVolumeClaim", 422);
    let mut spec = volume_spec();
    spec.storage.volume.as_mut().unwrap().size = Some(Quantity("20Gi".into()));
    spec.image = Some("registry.example.com/npm-registry-server:next".into());
    h.set_spec("npm", &spec).await;
    let error = h.reconcile("npm").await.expect_err("the PVC failure surfaces");
    let Error::Children { failures } = &error else {
        panic!("{error}")
    };
    assert_eq!(failures.len(), 1, "only the PVC failed: {failures:?}");
    assert_eq!(failures[0].kind, ChildKind::PersistentVolumeClaim);
    assert!(h.take_writes().contains(&"patch Deployment npm".to_string()));
    let image = h
        .api::<Deployment>()
        .get("npm")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("registry.example.com/npm-registry-server:next"));
    let registry = h.registry("npm").await;
    assert_eq!(condition(&registry, "Degraded"), ("True".into(), "ApplyFailed".into()));
    let warned = h.events().await.into_iter().any(|e| {
        e.reason.as_deref() == Some("ApplyFailed") && e.action.as_deref() == Some("ApplyPersistentVolumeClaim")
    });
    assert!(warned, "a Warning event names the PVC");
}

#[tokio::test]
async fn a_failed_config_map_holds_the_deployment_back_but_not_the_others() {
    let h = FakeApi::new(vec![registry_json("npm", &volume_spec())]).await;
    h.fail("ConfigMap", 500);
    let error = h.reconcile("npm").await.expect_err("fails");
    let Error::Children { failures } = &error else {
        panic!("{error}")
    };
    let kinds: Vec<_> = failures.iter().map(|f| (f.kind, f.action)).collect();
    assert_eq!(
        kinds,
        [
            (ChildKind::ConfigMap, ChildAction::Apply),
            (ChildKind::Deployment, ChildAction::Wait(ChildKind::ConfigMap))
        ]
    );
    let writes = h.take_writes();
    for applied in [
        "patch ServiceAccount npm",
        "patch Service npm",
        "patch PersistentVolumeClaim npm-storage",
    ] {
        assert!(writes.contains(&applied.to_string()), "{applied}: {writes:?}");
    }
    assert!(h.api::<Deployment>().get_opt("npm").await.unwrap().is_none());
}

#[tokio::test]
async fn invalid_spec_creates_nothing_and_reports_why() {
    let mut spec = volume_spec();
    spec.replicas = 3; // a ReadWriteOnce volume takes one pod (CEL refuses this on a real API server)
    let h = FakeApi::new(vec![registry_json("npm", &spec)]).await;
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
    let h = FakeApi::new(vec![object]).await;
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
    let h = FakeApi::new(vec![registry_json("npm", &spec)]).await;
    h.reconcile("npm").await.unwrap();
    let pvc = h.api::<PersistentVolumeClaim>().get("npm-storage").await.unwrap();
    assert!(pvc.owner_references().is_empty());
    assert!(owned_by_registry(&h.api::<Deployment>().get("npm").await.unwrap()));
}

#[tokio::test]
async fn events_name_each_child_and_do_not_fold_into_one_series() {
    let h = FakeApi::new(vec![registry_json("npm", &volume_spec())]).await;
    h.reconcile("npm").await.unwrap();
    let events = h.events().await;
    let mut notes: Vec<String> = events.iter().map(|e| e.note.clone().unwrap_or_default()).collect();
    notes.sort();
    assert_eq!(
        notes,
        [
            "Created ConfigMap npm-config",
            "Created Deployment npm",
            "Created PersistentVolumeClaim npm-storage",
            "Created Service npm",
            "Created ServiceAccount npm",
        ],
        "one event per child, none folded into another's series"
    );
    for event in &events {
        assert_eq!(event.regarding.as_ref().unwrap().kind.as_deref(), Some("NpmRegistry"));
        let related = event.related.as_ref().expect("the child is the related object");
        let note = event.note.as_deref().unwrap();
        assert!(note.ends_with(&format!(
            "{} {}",
            related.kind.as_deref().unwrap(),
            related.name.as_deref().unwrap()
        )));
        assert_eq!(
            event.action.as_deref(),
            Some(format!("Apply{}", related.kind.as_deref().unwrap()).as_str())
        );
        assert_eq!(event.series, None, "{note} is a series");
    }

    // A change updates one child: one event. Nothing changed: none.
    let mut spec = volume_spec();
    spec.log_level = Some(operator::crd::LogLevel::Debug);
    h.set_spec("npm", &spec).await;
    h.reconcile("npm").await.unwrap();
    let after = h.events().await;
    let mut new: Vec<String> = after
        .iter()
        .filter(|e| e.reason.as_deref() == Some("Updated"))
        .map(|e| e.note.clone().unwrap())
        .collect();
    // Listed in no particular order (by generated name), as in the first check.
    new.sort();
    assert_eq!(
        new,
        ["Updated ConfigMap npm-config", "Updated Deployment npm"],
        "the config and the roll"
    );
    h.reconcile("npm").await.unwrap();
    assert_eq!(h.events().await.len(), after.len(), "no event when nothing changed");
}

/// What the real API server does to what we applied: quantities in canonical spelling, defaults
/// filled in, a port added by another field manager.
async fn canonicalize_as_the_api_server_does(h: &FakeApi) {
    let mut deployment = h.api::<Deployment>().get("npm").await.unwrap();
    let spec = deployment.spec.as_mut().unwrap();
    spec.progress_deadline_seconds = Some(600);
    let container = &mut spec.template.spec.as_mut().unwrap().containers[0];
    container.termination_message_path = Some("/dev/termination-log".into());
    container.resources = Some(
        serde_json::from_value(json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1536Mi"}}))
            .unwrap(),
    );
    h.api::<Deployment>()
        .replace("npm", &Default::default(), &deployment)
        .await
        .unwrap();
    let mut service = h.api::<Service>().get("npm").await.unwrap();
    let spec = service.spec.as_mut().unwrap();
    spec.cluster_ip = Some("10.0.0.7".into());
    spec.ports
        .as_mut()
        .unwrap()
        .push(k8s_openapi::api::core::v1::ServicePort {
            name: Some("metrics".into()),
            port: 9090,
            ..Default::default()
        });
    h.api::<Service>()
        .replace("npm", &Default::default(), &service)
        .await
        .unwrap();
}

#[tokio::test]
async fn five_reconciles_of_an_unchanged_registry_with_non_canonical_quantities_write_nothing() {
    let mut spec = s3_spec();
    spec.resources = Some(
        serde_json::from_value(json!({
            "requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"memory": "1.5Gi"}
        }))
        .unwrap(),
    );
    let h = FakeApi::new(vec![registry_json("npm", &spec)]).await;
    h.reconcile("npm").await.unwrap();
    canonicalize_as_the_api_server_does(&h).await;
    let resources = h
        .api::<Deployment>()
        .get("npm")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .resources
        .clone()
        .unwrap();
    assert_eq!(
        resources.requests.unwrap()["cpu"],
        Quantity("500m".into()),
        "the live object is canonical"
    );
    h.take_writes();
    let events = h.events().await.len();
    let writes = h.ctx.metrics.writes();

    for _ in 0..5 {
        h.reconcile("npm").await.unwrap();
    }
    assert_eq!(h.take_writes(), Vec::<String>::new(), "a steady state must not write");
    assert_eq!(h.ctx.metrics.writes(), writes, "no apply was even sent");
    assert_eq!(h.events().await.len(), events, "and no event posted");
}

#[tokio::test]
async fn with_the_watch_caches_a_steady_state_asks_the_api_server_nothing() {
    let h = FakeApi::new(vec![registry_json("npm", &s3_spec())]).await;
    h.reconcile("npm").await.unwrap();
    h.reconcile("npm").await.unwrap();
    h.take_writes();
    let (caches, _writers) = h.caches().await;
    let cached = Arc::new(Context::new(h.client.clone(), Arc::new(Metrics::default())).with_caches(caches));
    h.reconcile_with("npm", cached.clone()).await.unwrap();
    assert_eq!(
        h.gets.lock().unwrap().clone(),
        Vec::<String>::new(),
        "no GET of any child"
    );
    assert_eq!(h.take_writes(), Vec::<String>::new());
    assert_eq!(cached.metrics.writes(), 0);
}

#[tokio::test]
async fn an_autoscaled_deployment_starts_at_min_replicas_under_its_own_field_manager() {
    let mut spec = s3_spec();
    spec.autoscaling = Some(operator::crd::AutoscalingSpec {
        min_replicas: 3,
        max_replicas: 6,
        ..Default::default()
    });
    let h = FakeApi::new(vec![registry_json("npm", &spec)]).await;
    h.reconcile("npm").await.unwrap();
    let deployment = h.api::<Deployment>().get("npm").await.unwrap();
    assert_eq!(deployment.spec.unwrap().replicas, Some(3), "not 1 until the HPA acts");
    let writes = h.take_writes();
    assert!(
        writes.contains(&"patch HorizontalPodAutoscaler npm".to_string()),
        "{writes:?}"
    );
    h.reconcile("npm").await.unwrap();
    assert_eq!(h.take_writes(), Vec::<String>::new(), "and then nothing more");
}

#[tokio::test]
async fn two_hundred_registries_converge_and_a_restarted_operator_writes_nothing() {
    let seed: Vec<_> = (0..200)
        .map(|i| {
            let mut object = registry_json(&format!("npm-{i}"), &s3_spec());
            object["metadata"]["uid"] = format!("00000000-0000-4000-8000-{i:012}").into();
            object
        })
        .collect();
    let h = FakeApi::new(seed).await;
    let started = std::time::Instant::now();
    for i in 0..200 {
        h.reconcile(&format!("npm-{i}")).await.unwrap();
    }
    let converge = started.elapsed();
    let first = h.take_writes().len();
    // A new process: fresh context, nothing remembered.
    let restarted = Arc::new(Context::new(h.client.clone(), Arc::new(Metrics::default())));
    let started = std::time::Instant::now();
    for i in 0..200 {
        h.reconcile_with(&format!("npm-{i}"), restarted.clone()).await.unwrap();
    }
    let resync = started.elapsed();
    let writes = h.take_writes();
    println!(
        "200 registries (fake API server): first pass {converge:?}, {first} writes; restart pass {resync:?}, {} writes",
        writes.len()
    );
    assert_eq!(
        writes,
        Vec::<String>::new(),
        "a restart must not rewrite converged registries"
    );
}

#[tokio::test]
async fn a_rollout_whose_new_pod_cannot_schedule_is_stalled_while_the_old_pods_serve() {
    // Mid-rollout: two old pods available, the new ReplicaSet's surge pod pending on a zone
    // spread no node can satisfy.
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "npm", "namespace": NS, "generation": 1},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app.kubernetes.io/name": "npm-registry-server"}},
                 "template": {"spec": {"containers": []}}},
        "status": {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 1, "readyReplicas": 2,
                   "availableReplicas": 2},
    });
    let pending = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "npm-new-1", "namespace": NS, "labels": {
            "app.kubernetes.io/name": "npm-registry-server", "app.kubernetes.io/instance": "npm"}},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 node(s) didn't match pod topology spread constraints (missing required label)."}]},
    });
    let h = FakeApi::new(vec![registry_json("npm", &s3_spec()), deployment, pending]).await;
    h.reconcile("npm").await.unwrap();
    let registry = h.registry("npm").await;
    assert_eq!(condition(&registry, "Stalled"), ("True".into(), "Unschedulable".into()));
    assert_eq!(condition(&registry, "Reconciling").0, "False");
    assert_eq!(condition(&registry, "Ready").0, "False");
    assert_eq!(condition(&registry, "Available").0, "True", "the old pods keep serving");
}
