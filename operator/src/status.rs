//! Status from observed children: conditions `Ready`, `Progressing`, `Degraded`, plus kstatus'
//! `Reconciling` and `Stalled` so Flux (kstatus) and Argo CD (Lua health check) read health right.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::NpmRegistryStatus;

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// A reconcile failure that status must report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// CamelCase reason, for example `InvalidSpec` or `ApplyFailed`.
    pub reason: String,
    pub message: String,
}

/// What the reconciler saw this pass.
#[derive(Default)]
pub struct Observed<'a> {
    pub generation: Option<i64>,
    pub deployment: Option<&'a Deployment>,
    pub ingress: Option<&'a Ingress>,
    /// The claim the operator created, for why pods wait on it.
    pub pvc: Option<&'a PersistentVolumeClaim>,
    /// The server pods, for why they are not ready.
    pub pods: &'a [Pod],
    pub url: Option<String>,
    pub failure: Option<Failure>,
}

/// One condition's value before timestamps.
struct Cond {
    type_: &'static str,
    status: bool,
    reason: String,
    message: String,
}

/// Computes the status; `previous` keeps `lastTransitionTime` for conditions whose status did not flip,
/// so an unchanged world yields an identical status (and no write).
pub fn compute(observed: &Observed, previous: Option<&NpmRegistryStatus>, now: &Time) -> NpmRegistryStatus {
    let ready_replicas = observed
        .deployment
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.ready_replicas);
    let (ready, progressing, degraded) = match &observed.failure {
        Some(f) => failed(f),
        None => from_deployment(observed.deployment, &blocker(observed)),
    };
    // kstatus: Reconciling while not done and not stuck; Stalled when stuck.
    let reconciling = Cond {
        type_: RECONCILING,
        status: !ready.status && !degraded.status,
        reason: progressing.reason.clone(),
        message: progressing.message.clone(),
    };
    let stalled = Cond {
        type_: STALLED,
        status: degraded.status,
        reason: degraded.reason.clone(),
        message: degraded.message.clone(),
    };
    let conditions = [ready, progressing, degraded, reconciling, stalled]
        .into_iter()
        .map(|c| to_condition(c, observed.generation, previous, now))
        .collect();
    NpmRegistryStatus {
        observed_generation: observed.generation,
        ready_replicas: Some(ready_replicas.unwrap_or(0)),
        url: observed.url.clone(),
        load_balancer_hostname: load_balancer_hostname(observed.ingress),
        conditions,
    }
}

fn failed(f: &Failure) -> (Cond, Cond, Cond) {
    (
        Cond {
            type_: READY,
            status: false,
            reason: f.reason.clone(),
            message: f.message.clone(),
        },
        Cond {
            type_: PROGRESSING,
            status: false,
            reason: f.reason.clone(),
            message: f.message.clone(),
        },
        Cond {
            type_: DEGRADED,
            status: true,
            reason: f.reason.clone(),
            message: f.message.clone(),
        },
    )
}

/// Why pods are not ready, from the pods and the claim: (reason, message).
fn blocker(observed: &Observed) -> Option<(String, String)> {
    let pod = observed.pods.iter().find_map(pod_blocker);
    let claim = observed.pvc.and_then(|pvc| {
        let phase = pvc.status.as_ref()?.phase.as_deref()?;
        (phase != "Bound").then(|| {
            (
                "ClaimNotBound".to_string(),
                format!(
                    "PersistentVolumeClaim {} is {phase}: no volume is bound to it yet",
                    pvc.metadata.name.as_deref().unwrap_or("")
                ),
            )
        })
    });
    match (pod, claim) {
        (Some((reason, message)), Some((_, claim))) => Some((reason, format!("{message}; {claim}"))),
        (pod, claim) => pod.or(claim),
    }
}

/// The first thing that keeps one pod from running: unschedulable, a container waiting (image
/// pull, crash loop, missing Secret) or terminated.
fn pod_blocker(pod: &Pod) -> Option<(String, String)> {
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let status = pod.status.as_ref()?;
    let conditions = status.conditions.iter().flatten();
    if let Some(c) = conditions
        .clone()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    {
        let reason = c.reason.clone().unwrap_or_else(|| "Unschedulable".into());
        return Some((reason, format!("pod {name}: {}", c.message.clone().unwrap_or_default())));
    }
    if conditions.clone().any(|c| c.type_ == "Ready" && c.status == "True") {
        return None;
    }
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for container in containers {
        let Some(state) = &container.state else { continue };
        if let Some(waiting) = &state.waiting
            && let Some(reason) = waiting
                .reason
                .as_deref()
                .filter(|r| *r != "PodInitializing" && *r != "ContainerCreating")
        {
            let mut message = format!("pod {name}, container {}: {reason}", container.name);
            if let Some(detail) = waiting.message.as_deref().filter(|m| !m.is_empty()) {
                message = format!("{message}: {detail}");
            }
            if let Some(last) = container.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
                message = format!(
                    "{message} (last exit: {}, code {})",
                    last.reason.as_deref().unwrap_or("unknown"),
                    last.exit_code
                );
            }
            return Some((reason.to_string(), message));
        }
        if let Some(terminated) = &state.terminated {
            let reason = terminated.reason.clone().unwrap_or_else(|| "Terminated".into());
            let message = format!(
                "pod {name}, container {}: {reason} (exit code {})",
                container.name, terminated.exit_code
            );
            return Some((reason, message));
        }
    }
    None
}

fn from_deployment(deployment: Option<&Deployment>, blocker: &Option<(String, String)>) -> (Cond, Cond, Cond) {
    let ok = |type_, status, reason: &str, message: String| Cond {
        type_,
        status,
        reason: reason.into(),
        message,
    };
    let Some(deployment) = deployment else {
        let msg = "waiting for the Deployment".to_string();
        return (
            ok(READY, false, "DeploymentMissing", msg.clone()),
            ok(PROGRESSING, true, "Creating", msg),
            ok(DEGRADED, false, "AsExpected", String::new()),
        );
    };
    let status = deployment.status.clone().unwrap_or_default();
    let wanted = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0) >= deployment.metadata.generation.unwrap_or(0);
    let condition = |type_: &str| status.conditions.iter().flatten().find(|c| c.type_ == type_).cloned();

    // The Deployment controller's own verdicts on a stuck rollout.
    let stuck = condition("Progressing")
        .filter(|c| c.status == "False" && c.reason.as_deref() == Some("ProgressDeadlineExceeded"));
    let replica_failure = condition("ReplicaFailure").filter(|c| c.status == "True");
    let degraded = match stuck.or(replica_failure) {
        Some(c) => ok(
            DEGRADED,
            true,
            c.reason.as_deref().unwrap_or("ReplicaFailure"),
            c.message.unwrap_or_default(),
        ),
        None => ok(DEGRADED, false, "AsExpected", String::new()),
    };

    let complete = observed && updated >= wanted && available >= wanted && ready >= wanted && total <= wanted;
    let pods = format!("{ready} of {wanted} pods ready");
    if complete {
        let reason = if wanted == 0 { "ScaledToZero" } else { "Available" };
        return (
            ok(READY, true, reason, pods.clone()),
            ok(PROGRESSING, false, "RolloutComplete", pods),
            degraded,
        );
    }
    let (reason, message) = match blocker {
        Some((reason, why)) => (reason.clone(), format!("{pods}: {why}")),
        None => (
            pod_waiting_reason(&status).unwrap_or_else(|| "PodsNotReady".into()),
            pods.clone(),
        ),
    };
    // A stuck rollout is not progressing: say why instead of "in progress".
    let progressing = if degraded.status {
        ok(PROGRESSING, false, &degraded.reason.clone(), degraded.message.clone())
    } else {
        ok(PROGRESSING, true, "RolloutInProgress", pods)
    };
    (ok(READY, false, &reason, message), progressing, degraded)
}

/// Unavailable pods without a more precise verdict: say so; the Deployment condition's message
/// carries the detail (for example "0/3 nodes are available").
fn pod_waiting_reason(status: &k8s_openapi::api::apps::v1::DeploymentStatus) -> Option<String> {
    let available = status.conditions.iter().flatten().find(|c| c.type_ == "Available")?;
    (available.status == "False").then(|| "MinimumReplicasUnavailable".into())
}

fn to_condition(c: Cond, generation: Option<i64>, previous: Option<&NpmRegistryStatus>, now: &Time) -> Condition {
    let status = if c.status { "True" } else { "False" }.to_string();
    let last_transition_time = previous
        .and_then(|p| p.conditions.iter().find(|old| old.type_ == c.type_))
        .filter(|old| old.status == status)
        .map(|old| old.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: c.type_.into(),
        status,
        reason: c.reason,
        // Condition messages are limited to 32768 bytes by the API.
        message: truncate(c.message, 1024),
        observed_generation: generation,
        last_transition_time,
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn load_balancer_hostname(ingress: Option<&Ingress>) -> Option<String> {
    let lb = ingress?.status.as_ref()?.load_balancer.as_ref()?;
    lb.ingress
        .iter()
        .flatten()
        .find_map(|i| i.hostname.clone().or_else(|| i.ip.clone()))
}

#[cfg(test)]
mod tests {
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
}
