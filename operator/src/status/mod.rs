//! Status from observed children: conditions `Ready`, `Available`, `Progressing`, `Degraded`,
//! plus kstatus' `Reconciling` and `Stalled` so Flux (kstatus) and Argo CD (Lua health check) read
//! health right. `Ready` is the spec fully rolled out; `Available` is enough pods serving (the old
//! ones during a rollout). A rollout that cannot progress (its pods unschedulable, or past the
//! Deployment's progress deadline) is `Stalled` with the scheduler's reason at once, not after
//! the deadline: nothing will change until someone changes the spec or the nodes.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::NpmRegistryStatus;

pub const READY: &str = "Ready";
pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// Why a single-volume registry's rollouts are short outages, and what avoids them (the
/// Deployment's `Recreate` strategy).
pub const RECREATE_OUTAGE: &str = "a ReadWriteOnce volume allows one pod, so each rollout stops the old pod before the \
     new one starts (a short outage); a ReadWriteMany volume (EFS) or S3 storage rolls with no downtime";

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
    let available = available(observed.deployment);
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
    let conditions = [ready, available, progressing, degraded, reconciling, stalled]
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

/// Enough pods serve: as many available as wanted (during a rollout, the old ones count).
fn available(deployment: Option<&Deployment>) -> Cond {
    let status = deployment.and_then(|d| d.status.clone()).unwrap_or_default();
    let wanted = deployment.and_then(|d| d.spec.as_ref()?.replicas).unwrap_or(1);
    let available = status.available_replicas.unwrap_or(0);
    let ok = available > 0 && available >= wanted;
    let mut message = format!("{available} of {wanted} pods available");
    if recreates(deployment) {
        message = format!("{message}; {RECREATE_OUTAGE}");
    }
    Cond {
        type_: AVAILABLE,
        status: ok,
        reason: if ok {
            "MinimumReplicasAvailable"
        } else {
            "MinimumReplicasUnavailable"
        }
        .into(),
        message,
    }
}

fn recreates(deployment: Option<&Deployment>) -> bool {
    deployment
        .and_then(|d| d.spec.as_ref()?.strategy.as_ref()?.type_.as_deref())
        .is_some_and(|t| t == "Recreate")
}

/// The scheduler's word on a pod that topology spread keeps off every node, with the fix.
fn spread_hint(message: &str) -> String {
    if message.contains("topology spread") {
        format!(
            "{message} (a DoNotSchedule zone spread needs nodes labelled topology.kubernetes.io/zone in enough zones; \
             set spec.topologySpread.whenUnsatisfiable: ScheduleAnyway or label the nodes)"
        )
    } else {
        message.to_string()
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

/// The scheduler's reason for a pod no node can take.
const UNSCHEDULABLE: &str = "Unschedulable";

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
        let reason = c.reason.clone().unwrap_or_else(|| UNSCHEDULABLE.into());
        let message = spread_hint(c.message.as_deref().unwrap_or_default());
        return Some((reason, format!("pod {name}: {message}")));
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
    let complete = observed && updated >= wanted && available >= wanted && ready >= wanted && total <= wanted;
    // A pod no node can take stalls the rollout now: the scheduler retries, but nothing changes
    // until the spec or the nodes do.
    let unschedulable = blocker
        .as_ref()
        .filter(|(reason, _)| !complete && reason == UNSCHEDULABLE);
    let degraded = match (stuck.or(replica_failure), unschedulable) {
        (Some(c), _) => ok(
            DEGRADED,
            true,
            c.reason.as_deref().unwrap_or("ReplicaFailure"),
            c.message.unwrap_or_default(),
        ),
        (None, Some((reason, why))) => ok(DEGRADED, true, reason, format!("the rollout cannot progress: {why}")),
        (None, None) => ok(DEGRADED, false, "AsExpected", String::new()),
    };

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
    } else if recreates(Some(deployment)) {
        ok(
            PROGRESSING,
            true,
            "RolloutInProgress",
            format!("{pods}; {RECREATE_OUTAGE}"),
        )
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
mod tests;
