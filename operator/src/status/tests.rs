use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
use k8s_openapi::api::networking::v1::{IngressLoadBalancerIngress, IngressLoadBalancerStatus, IngressStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use super::*;

fn time(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).unwrap())
}

fn deployment(wanted: i32, ready: i32, conditions: Vec<DeploymentCondition>) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            generation: Some(2),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(wanted),
            ..DeploymentSpec::default()
        }),
        status: Some(DeploymentStatus {
            observed_generation: Some(2),
            replicas: Some(wanted.max(ready)),
            updated_replicas: Some(wanted),
            ready_replicas: Some(ready),
            available_replicas: Some(ready),
            conditions: Some(conditions),
            ..DeploymentStatus::default()
        }),
    }
}

fn cond(status: &NpmRegistryStatus, type_: &str) -> Condition {
    status.conditions.iter().find(|c| c.type_ == type_).cloned().unwrap()
}

fn observed(d: Option<&Deployment>) -> Observed<'_> {
    Observed {
        generation: Some(7),
        deployment: d,
        ..Observed::default()
    }
}

#[test]
fn all_pods_ready_is_ready_and_not_progressing() {
    let d = deployment(2, 2, vec![]);
    let s = compute(&observed(Some(&d)), None, &time(1));
    assert_eq!(s.observed_generation, Some(7));
    assert_eq!(s.ready_replicas, Some(2));
    assert_eq!(cond(&s, READY).status, "True");
    assert_eq!(cond(&s, READY).reason, "Available");
    assert_eq!(cond(&s, PROGRESSING).status, "False");
    assert_eq!(cond(&s, DEGRADED).status, "False");
    assert_eq!(cond(&s, RECONCILING).status, "False");
    assert_eq!(cond(&s, STALLED).status, "False");
    assert!(s.conditions.iter().all(|c| c.observed_generation == Some(7)));
}

#[test]
fn pods_that_cannot_start_give_ready_false_with_a_reason() {
    let unavailable = DeploymentCondition {
        type_: "Available".into(),
        status: "False".into(),
        reason: Some("MinimumReplicasUnavailable".into()),
        message: Some("Deployment does not have minimum availability.".into()),
        ..DeploymentCondition::default()
    };
    let d = deployment(1, 0, vec![unavailable]);
    let s = compute(&observed(Some(&d)), None, &time(1));
    let ready = cond(&s, READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "MinimumReplicasUnavailable")
    );
    assert_eq!(ready.message, "0 of 1 pods ready");
    assert_eq!(cond(&s, PROGRESSING).status, "True");
    assert_eq!(cond(&s, RECONCILING).status, "True");
    assert_eq!(s.ready_replicas, Some(0));
}

#[test]
fn a_rollout_past_its_deadline_is_degraded_and_stalled() {
    let stuck = DeploymentCondition {
        type_: "Progressing".into(),
        status: "False".into(),
        reason: Some("ProgressDeadlineExceeded".into()),
        message: Some("ReplicaSet \"npm-1\" has timed out progressing.".into()),
        ..DeploymentCondition::default()
    };
    let d = deployment(1, 0, vec![stuck]);
    let s = compute(&observed(Some(&d)), None, &time(1));
    assert_eq!(cond(&s, DEGRADED).status, "True");
    assert_eq!(cond(&s, DEGRADED).reason, "ProgressDeadlineExceeded");
    assert_eq!(cond(&s, STALLED).status, "True");
    assert_eq!(cond(&s, PROGRESSING).status, "False");
    assert_eq!(
        cond(&s, PROGRESSING).reason,
        "ProgressDeadlineExceeded",
        "not RolloutInProgress"
    );
    assert_eq!(cond(&s, RECONCILING).status, "False");
    assert_eq!(cond(&s, READY).status, "False");
}

fn pod(status: serde_json::Value) -> Pod {
    serde_json::from_value(serde_json::json!({"metadata": {"name": "npm-5d9f-x"}, "status": status})).unwrap()
}

#[test]
fn why_pods_are_pending_reaches_ready() {
    let d = deployment(1, 0, vec![]);
    let unschedulable = pod(serde_json::json!({"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient memory."}]}));
    let pods = [unschedulable];
    let mut o = observed(Some(&d));
    o.pods = &pods;
    let s = compute(&o, None, &time(1));
    let ready = cond(&s, READY);
    assert_eq!(ready.reason, "Unschedulable");
    assert!(
        ready
            .message
            .contains("0/3 nodes are available: 3 Insufficient memory."),
        "{}",
        ready.message
    );

    let pulling = pod(serde_json::json!({"phase": "Pending", "containerStatuses": [{
        "name": "server", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}}]}));
    let pods = [pulling];
    o.pods = &pods;
    let ready = cond(&compute(&o, None, &time(1)), READY);
    assert_eq!(ready.reason, "ImagePullBackOff");
    assert!(
        ready
            .message
            .contains("container server: ImagePullBackOff: Back-off pulling image"),
        "{}",
        ready.message
    );
}

#[test]
fn an_unbound_claim_reaches_ready() {
    let d = deployment(1, 0, vec![]);
    let pvc: PersistentVolumeClaim = serde_json::from_value(
        serde_json::json!({"metadata": {"name": "npm-storage"}, "status": {"phase": "Pending"}}),
    )
    .unwrap();
    let mut o = observed(Some(&d));
    o.pvc = Some(&pvc);
    let ready = cond(&compute(&o, None, &time(1)), READY);
    assert_eq!(ready.reason, "ClaimNotBound");
    assert!(
        ready.message.contains("PersistentVolumeClaim npm-storage is Pending"),
        "{}",
        ready.message
    );
}

#[test]
fn a_failure_is_degraded_with_its_reason() {
    let mut o = observed(None);
    o.failure = Some(Failure {
        reason: "ApplyFailed".into(),
        message: "Deployment npm: forbidden".into(),
    });
    let s = compute(&o, None, &time(1));
    let degraded = cond(&s, DEGRADED);
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "ApplyFailed")
    );
    assert_eq!(cond(&s, READY).reason, "ApplyFailed");
    assert_eq!(cond(&s, STALLED).status, "True");
}

#[test]
fn missing_deployment_is_progressing() {
    let s = compute(&observed(None), None, &time(1));
    assert_eq!(cond(&s, READY).reason, "DeploymentMissing");
    assert_eq!(cond(&s, PROGRESSING).status, "True");
}

#[test]
fn transition_time_moves_only_when_status_flips() {
    let ready = deployment(1, 1, vec![]);
    let first = compute(&observed(Some(&ready)), None, &time(1));
    let same = compute(&observed(Some(&ready)), Some(&first), &time(50));
    assert_eq!(first, same, "an unchanged world yields an identical status");
    let not_ready = deployment(1, 0, vec![]);
    let flipped = compute(&observed(Some(&not_ready)), Some(&same), &time(99));
    assert_eq!(cond(&flipped, READY).last_transition_time, time(99));
    assert_eq!(cond(&flipped, DEGRADED).last_transition_time, time(1));
}

#[test]
fn load_balancer_hostname_and_url_are_reported() {
    let ingress = Ingress {
        status: Some(IngressStatus {
            load_balancer: Some(IngressLoadBalancerStatus {
                ingress: Some(vec![IngressLoadBalancerIngress {
                    hostname: Some("k8s-team-npm-0123.eu-west-1.elb.amazonaws.com".into()),
                    ..IngressLoadBalancerIngress::default()
                }]),
            }),
        }),
        ..Ingress::default()
    };
    let mut o = observed(None);
    o.ingress = Some(&ingress);
    o.url = Some("https://npm.example.com/".into());
    let s = compute(&o, None, &time(1));
    assert_eq!(
        s.load_balancer_hostname.as_deref(),
        Some("k8s-team-npm-0123.eu-west-1.elb.amazonaws.com")
    );
    assert_eq!(s.url.as_deref(), Some("https://npm.example.com/"));
}

#[test]
fn a_rollout_whose_new_pod_cannot_be_scheduled_is_stalled_while_the_old_pods_serve() {
    // Two old pods ready, the surge pod of the new ReplicaSet pending on a zone spread.
    let mut d = deployment(2, 2, vec![]);
    let status = d.status.as_mut().unwrap();
    (status.replicas, status.updated_replicas) = (Some(3), Some(1));
    let pending = pod(serde_json::json!({"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 node(s) didn't match pod topology spread constraints (missing required label)."}]}));
    let pods = [pending];
    let mut o = observed(Some(&d));
    o.pods = &pods;
    let s = compute(&o, None, &time(1));
    let stalled = cond(&s, STALLED);
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "Unschedulable")
    );
    assert!(
        stalled.message.contains("missing required label"),
        "{}",
        stalled.message
    );
    assert!(
        stalled.message.contains("ScheduleAnyway"),
        "the fix is named: {}",
        stalled.message
    );
    assert_eq!(cond(&s, AVAILABLE).status, "True", "the old pods serve");
    assert_eq!(cond(&s, AVAILABLE).message, "2 of 2 pods available");
    assert_eq!(cond(&s, READY).status, "False");
    assert_eq!(cond(&s, RECONCILING).status, "False");
    assert_eq!(cond(&s, PROGRESSING).status, "False");

    // Once the pod schedules, the rollout is progressing again.
    let running = pod(serde_json::json!({"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "True"}]}));
    let pods = [running];
    o.pods = &pods;
    let s = compute(&o, None, &time(2));
    assert_eq!(cond(&s, STALLED).status, "False");
    assert_eq!(cond(&s, RECONCILING).status, "True");
}

#[test]
fn a_recreate_rollout_says_why_it_is_an_outage() {
    let mut d = deployment(1, 0, vec![]);
    d.spec.as_mut().unwrap().strategy = Some(k8s_openapi::api::apps::v1::DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    });
    let s = compute(&observed(Some(&d)), None, &time(1));
    for c in [PROGRESSING, AVAILABLE] {
        assert!(
            cond(&s, c).message.contains(RECREATE_OUTAGE),
            "{c}: {}",
            cond(&s, c).message
        );
    }
    assert_eq!(cond(&s, AVAILABLE).status, "False");
}
