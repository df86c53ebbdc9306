//! The one table of child kinds. Apply order, which kinds are deleted when no longer wanted, what a
//! kind needs applied first, how a change to a live child reaches its NpmRegistry, the caches and
//! the RBAC test all read it: a new kind is one line here, and every `match` below (all exhaustive)
//! stops compiling until it is placed.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Resource;
use kube::api::ApiResource;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What every child type is.
pub trait ChildObject:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + k8s_openapi::Resource
    + Clone
    + Debug
    + PartialEq
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    const CHILD_KIND: ChildKind;
    fn into_child(self) -> Child;
}

/// Something done with a kind's Rust type (watch it, cache it, delete an orphan of it).
pub trait KindVisitor {
    type Output;
    fn visit<K: ChildObject>(self) -> Self::Output;
}

/// Something done with a child object of any kind (apply it).
pub trait ObjectVisitor {
    type Output;
    fn visit<K: ChildObject>(self, object: &K) -> Self::Output;
}

macro_rules! child_kinds {
    ($($kind:ident),+ $(,)?) => {
        /// A kind of object an NpmRegistry owns.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ChildKind {
            $($kind),+
        }

        impl ChildKind {
            /// Every kind, in apply order.
            pub const ALL: &'static [ChildKind] = &[$(ChildKind::$kind),+];

            /// Calls `visitor` with this kind's Rust type.
            pub fn visit<V: KindVisitor>(self, visitor: V) -> V::Output {
                match self {
                    $(ChildKind::$kind => visitor.visit::<$kind>()),+
                }
            }
        }

        /// A child object of one of the kinds (short-lived: built, applied, read for status).
        #[derive(Clone, Debug, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum Child {
            $($kind($kind)),+
        }

        impl Child {
            pub fn kind(&self) -> ChildKind {
                match self {
                    $(Child::$kind(_) => ChildKind::$kind),+
                }
            }

            /// Calls `visitor` with the object, typed.
            pub fn visit<V: ObjectVisitor>(&self, visitor: V) -> V::Output {
                match self {
                    $(Child::$kind(object) => visitor.visit(object)),+
                }
            }
        }

        $(
            impl ChildObject for $kind {
                const CHILD_KIND: ChildKind = ChildKind::$kind;
                fn into_child(self) -> Child {
                    Child::$kind(self)
                }
            }
        )+
    };
}

// Apply order: everything the pods mount or run as exists before the Deployment references it;
// the Ingress, PDB and HPA point at the Service and the Deployment.
child_kinds! {
    ConfigMap,
    ServiceAccount,
    Service,
    PersistentVolumeClaim,
    Deployment,
    Ingress,
    PodDisruptionBudget,
    HorizontalPodAutoscaler,
}

/// How a change to a live child is mapped back to its NpmRegistry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    /// Through its controller owner reference.
    ByOwner,
    /// Through its `app.kubernetes.io/instance` label: for children that may carry no owner.
    ByLabel,
}

impl ChildKind {
    /// The Kubernetes kind, for example `Deployment`.
    pub fn name(self) -> &'static str {
        struct Name;
        impl KindVisitor for Name {
            type Output = &'static str;
            fn visit<K: ChildObject>(self) -> &'static str {
                <K as k8s_openapi::Resource>::KIND
            }
        }
        self.visit(Name)
    }

    /// Group, version and plural (what RBAC grants and the API paths use).
    pub fn api_resource(self) -> ApiResource {
        struct Erase;
        impl KindVisitor for Erase {
            type Output = ApiResource;
            fn visit<K: ChildObject>(self) -> ApiResource {
                ApiResource::erase::<K>(&())
            }
        }
        self.visit(Erase)
    }

    /// Deleted when the spec stops asking for it. Never a PVC (switching storage must not destroy
    /// packages); the ConfigMap, ServiceAccount, Service and Deployment are always wanted.
    pub fn deleted_when_unwanted(self) -> bool {
        match self {
            ChildKind::Ingress | ChildKind::PodDisruptionBudget | ChildKind::HorizontalPodAutoscaler => true,
            ChildKind::ConfigMap
            | ChildKind::ServiceAccount
            | ChildKind::Service
            | ChildKind::PersistentVolumeClaim
            | ChildKind::Deployment => false,
        }
    }

    /// Kinds whose apply must have succeeded in this pass before this one is applied: a Deployment
    /// whose config or ServiceAccount failed would roll pods onto what it could not write. Every
    /// other failure leaves the independent kinds alone (a refused PVC edit never blocks the
    /// Deployment, the claim it mounts is the live one).
    pub fn needs(self) -> &'static [ChildKind] {
        match self {
            ChildKind::Deployment => &[ChildKind::ConfigMap, ChildKind::ServiceAccount],
            ChildKind::ConfigMap
            | ChildKind::ServiceAccount
            | ChildKind::Service
            | ChildKind::PersistentVolumeClaim
            | ChildKind::Ingress
            | ChildKind::PodDisruptionBudget
            | ChildKind::HorizontalPodAutoscaler => &[],
        }
    }

    /// A retained PVC has no owner reference, so it is watched by label.
    pub fn watch(self) -> Watch {
        match self {
            ChildKind::PersistentVolumeClaim => Watch::ByLabel,
            ChildKind::ConfigMap
            | ChildKind::ServiceAccount
            | ChildKind::Service
            | ChildKind::Deployment
            | ChildKind::Ingress
            | ChildKind::PodDisruptionBudget
            | ChildKind::HorizontalPodAutoscaler => Watch::ByOwner,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_kind_once_in_apply_order() {
        let names: Vec<&str> = ChildKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(
            names,
            [
                "ConfigMap",
                "ServiceAccount",
                "Service",
                "PersistentVolumeClaim",
                "Deployment",
                "Ingress",
                "PodDisruptionBudget",
                "HorizontalPodAutoscaler"
            ]
        );
        for kind in ChildKind::ALL {
            for need in kind.needs() {
                let position = |k| ChildKind::ALL.iter().position(|x| x == k).unwrap();
                assert!(
                    position(need) < position(kind),
                    "{kind:?} needs {need:?}, applied later"
                );
            }
        }
    }

    #[test]
    fn api_resources_name_group_and_plural() {
        let deployment = ChildKind::Deployment.api_resource();
        assert_eq!(
            (deployment.group.as_str(), deployment.plural.as_str()),
            ("apps", "deployments")
        );
        let hpa = ChildKind::HorizontalPodAutoscaler.api_resource();
        assert_eq!(hpa.version, "v2");
    }
}
