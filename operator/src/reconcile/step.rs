//! One reconcile's work on the children of one NpmRegistry: apply what is wanted, delete what is
//! not, in the table's order; one event per child change, none when nothing changed.

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::json;
use tracing::info;

use super::error::{ChildAction, ChildFailure, Error, describe};
use super::{REPLICAS_MANAGER, now, write_status};
use crate::apply::{self, FIELD_MANAGER, Outcome};
use crate::children::{Child, ChildKind, ChildObject, KindVisitor, ObjectVisitor};
use crate::context::Context;
use crate::crd::NpmRegistry;
use crate::resources::{Desired, names};
use crate::status::{self, Observed};

/// One reconcile's view of one NpmRegistry.
pub(super) struct Step<'a> {
    pub ctx: &'a Context,
    pub namespace: &'a str,
    pub registry: &'a NpmRegistry,
    pub reference: ObjectReference,
}

impl<'a> Step<'a> {
    /// Applies every wanted child and deletes every unwanted one, in the table's order; a failure
    /// skips only the kinds that need the failed kind. Returns the children as they now are.
    pub async fn apply_all(&'a self, desired: &Desired) -> (Vec<Child>, Vec<ChildFailure>) {
        let mut applied = Vec::new();
        let mut failures: Vec<ChildFailure> = Vec::new();
        for &kind in ChildKind::ALL {
            let name = names::of(kind, &self.registry.name_any());
            if let Some(&need) = kind.needs().iter().find(|k| failures.iter().any(|f| f.kind == **k)) {
                failures.push(ChildFailure {
                    kind,
                    name,
                    action: ChildAction::Wait(need),
                    message: String::new(),
                });
                continue;
            }
            let result = match desired.get(kind) {
                Some(child) => self.apply_child(child, desired).await.map(|live| applied.push(live)),
                None if kind.deleted_when_unwanted() => kind.visit(DeleteChild(self)).await,
                None => Ok(()),
            };
            if let Err(failure) = result {
                failures.push(failure);
            }
        }
        (applied, failures)
    }

    async fn apply_child(&'a self, child: Child, desired: &Desired) -> Result<Child, ChildFailure> {
        let autoscaled = child.kind() == ChildKind::Deployment && desired.hpa.is_some();
        let fail = |error: kube::Error| ChildFailure {
            kind: ChildKind::Deployment,
            name: desired.deployment.name_any(),
            action: ChildAction::Apply,
            message: describe(&error),
        };
        if autoscaled {
            self.hand_replicas_to_hpa(desired, false).await.map_err(fail)?;
        }
        let (live, outcome) = child.visit(ApplyChild(self)).await?;
        if autoscaled
            && outcome == Outcome::Created
            && let Some(scaled) = self.hand_replicas_to_hpa(desired, true).await.map_err(fail)?
        {
            return Ok(Child::Deployment(scaled));
        }
        Ok(live)
    }

    async fn apply<K: ChildObject>(&self, desired: &K) -> Result<(K, Outcome), ChildFailure> {
        let client = &self.ctx.client;
        let api: Api<K> = Api::namespaced(client.clone(), self.namespace);
        let name = desired.name_any();
        let fail = |error: kube::Error| ChildFailure {
            kind: K::CHILD_KIND,
            name: name.clone(),
            action: ChildAction::Apply,
            message: describe(&error),
        };
        let live = self
            .ctx
            .caches
            .live::<K>(client, self.namespace, &name)
            .await
            .map_err(fail)?;
        let result = apply::apply(&api, live, desired).await;
        let (object, outcome) = match result {
            Ok(applied) => applied,
            Err(error) => {
                let failure = fail(error);
                self.child_event(
                    K::CHILD_KIND,
                    &name,
                    EventType::Warning,
                    "ApplyFailed",
                    failure.to_string(),
                )
                .await;
                return Err(failure);
            }
        };
        if outcome != Outcome::Unchanged {
            self.ctx.metrics.write(K::CHILD_KIND.name(), outcome);
        }
        let reason = match outcome {
            Outcome::Unchanged | Outcome::NoOp => return Ok((object, outcome)),
            Outcome::Created => "Created",
            Outcome::Updated => "Updated",
        };
        let kind = K::CHILD_KIND.name();
        info!(kind, name, reason, "applied");
        self.child_event(
            K::CHILD_KIND,
            &name,
            EventType::Normal,
            reason,
            format!("{reason} {kind} {name}"),
        )
        .await;
        Ok((object, outcome))
    }

    /// An autoscaled Deployment's replica count belongs to the HPA. Our manager must not own it
    /// (our next apply, which leaves it out, would reset it to 1), so a separate manager sets it:
    /// to `minReplicas` once the Deployment is created (the HPA would take a while to raise it
    /// from 1), and to the live count when our manager owned it (the NpmRegistry had fixed
    /// replicas before).
    async fn hand_replicas_to_hpa(&self, desired: &Desired, created: bool) -> Result<Option<Deployment>, kube::Error> {
        let Some(min) = desired
            .hpa
            .as_ref()
            .and_then(|h| h.spec.as_ref())
            .and_then(|s| s.min_replicas)
        else {
            return Ok(None);
        };
        let name = desired.deployment.name_any();
        let replicas = if created {
            min
        } else {
            let client = &self.ctx.client;
            let Some(live) = self
                .ctx
                .caches
                .live::<Deployment>(client, self.namespace, &name)
                .await?
            else {
                return Ok(None);
            };
            let fields = live.metadata.managed_fields.as_deref().unwrap_or_default();
            if !apply::owns_field(fields, FIELD_MANAGER, &["spec", "replicas"]) {
                return Ok(None);
            }
            live.spec.and_then(|s| s.replicas).unwrap_or(min).max(min)
        };
        let patch = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"replicas": replicas},
        });
        let api: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), self.namespace);
        let scaled = api
            .patch(
                &name,
                &PatchParams::apply(REPLICAS_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        self.ctx.metrics.write("Deployment", Outcome::Updated);
        Ok(Some(scaled))
    }

    async fn delete_unwanted<K: ChildObject>(&self) -> Result<(), ChildFailure> {
        let client = &self.ctx.client;
        let name = names::of(K::CHILD_KIND, &self.registry.name_any());
        let fail = |error: kube::Error| ChildFailure {
            kind: K::CHILD_KIND,
            name: name.clone(),
            action: ChildAction::Delete,
            message: describe(&error),
        };
        let Some(live) = self
            .ctx
            .caches
            .existing::<K>(client, self.namespace, &name)
            .await
            .map_err(fail)?
        else {
            return Ok(());
        };
        let api: Api<K> = Api::namespaced(client.clone(), self.namespace);
        let uid = self.registry.uid().unwrap_or_default();
        match apply::delete_owned(&api, &live, &uid).await {
            Ok(false) => Ok(()),
            Ok(true) => {
                let kind = K::CHILD_KIND.name();
                info!(kind, name, "deleted: no longer wanted");
                self.ctx.metrics.write(kind, Outcome::Updated);
                self.child_event(
                    K::CHILD_KIND,
                    &name,
                    EventType::Normal,
                    "Deleted",
                    format!("Deleted {kind} {name}"),
                )
                .await;
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(error) => {
                let failure = fail(error);
                self.child_event(
                    K::CHILD_KIND,
                    &name,
                    EventType::Warning,
                    "DeleteFailed",
                    failure.to_string(),
                )
                .await;
                Err(failure)
            }
        }
    }

    /// An event on the NpmRegistry about one child: reason per outcome, action per kind, the
    /// child as the related object, so no two children share a series.
    async fn child_event(&self, kind: ChildKind, name: &str, type_: EventType, reason: &str, note: String) {
        let resource = kind.api_resource();
        let related = ObjectReference {
            api_version: Some(resource.api_version),
            kind: Some(resource.kind),
            name: Some(name.to_string()),
            namespace: Some(self.namespace.to_string()),
            ..ObjectReference::default()
        };
        let verb = if reason.starts_with("Delete") {
            "Delete"
        } else {
            "Apply"
        };
        self.ctx
            .event(
                &self.reference,
                Some(related),
                type_,
                reason,
                format!("{verb}{}", kind.name()),
                note,
            )
            .await;
    }

    /// Computes and writes the status (only when it changed); a failure also gets a Warning
    /// event when it is new.
    pub async fn write(&self, observed: Observed<'_>) -> Result<(), Error> {
        let failure = observed.failure.clone();
        let status = status::compute(&observed, self.registry.status.as_ref(), &now());
        let api: Api<NpmRegistry> = Api::namespaced(self.ctx.client.clone(), self.namespace);
        let changed = write_status(&api, self.registry, status).await?;
        if changed && let Some(failure) = failure {
            self.ctx
                .event(
                    &self.reference,
                    None,
                    EventType::Warning,
                    &failure.reason,
                    "Reconcile".into(),
                    failure.message,
                )
                .await;
        }
        Ok(())
    }
}

struct ApplyChild<'a>(&'a Step<'a>);

impl<'a> ObjectVisitor for ApplyChild<'a> {
    type Output = BoxFuture<'a, Result<(Child, Outcome), ChildFailure>>;
    fn visit<K: ChildObject>(self, object: &K) -> Self::Output {
        let (step, object) = (self.0, object.clone());
        Box::pin(async move {
            let (live, outcome) = step.apply(&object).await?;
            Ok((live.into_child(), outcome))
        })
    }
}

struct DeleteChild<'a>(&'a Step<'a>);

impl<'a> KindVisitor for DeleteChild<'a> {
    type Output = BoxFuture<'a, Result<(), ChildFailure>>;
    fn visit<K: ChildObject>(self) -> Self::Output {
        let step = self.0;
        Box::pin(async move { step.delete_unwanted::<K>().await })
    }
}
