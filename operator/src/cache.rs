//! What the watches already hold: a reconcile reads live children (and the server pods, for
//! status) from the reflector stores the controller keeps, not from the API server. Without stores
//! (the unit tests, or a store still filling at startup) a lookup falls back to one GET.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use futures::FutureExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use crate::children::{ChildKind, ChildObject};

/// The stores of the child kinds and of the server pods.
#[derive(Clone, Default)]
pub struct Caches {
    children: HashMap<ChildKind, Arc<dyn Any + Send + Sync>>,
    pods: Option<Store<Pod>>,
}

impl Caches {
    pub fn insert<K: ChildObject>(&mut self, store: Store<K>) {
        self.children.insert(K::CHILD_KIND, Arc::new(store));
    }

    pub fn set_pods(&mut self, store: Store<Pod>) {
        self.pods = Some(store);
    }

    /// The store of `K`, once it has listed everything (before that it would answer "absent").
    fn store<K: ChildObject>(&self) -> Option<&Store<K>> {
        let store = self.children.get(&K::CHILD_KIND)?.downcast_ref::<Store<K>>()?;
        is_ready(store).then_some(store)
    }

    /// The live child, from the store when it has it; else from the API server (the store may not
    /// have seen an object created a moment ago: better one GET than a second "Created").
    pub async fn live<K: ChildObject>(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
    ) -> Result<Option<K>, kube::Error> {
        if let Some(store) = self.store::<K>()
            && let Some(object) = store.get(&ObjectRef::new(name).within(namespace))
        {
            return Ok(Some((*object).clone()));
        }
        Api::<K>::namespaced(client.clone(), namespace).get_opt(name).await
    }

    /// Whether the child exists, trusting the store when it is ready (a steady state asks the API
    /// server nothing about the optional kinds it does not use).
    pub async fn existing<K: ChildObject>(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
    ) -> Result<Option<K>, kube::Error> {
        match self.store::<K>() {
            Some(store) => Ok(store
                .get(&ObjectRef::new(name).within(namespace))
                .map(|object| (*object).clone())),
            None => Api::<K>::namespaced(client.clone(), namespace).get_opt(name).await,
        }
    }

    /// The server pods of one NpmRegistry (selected by their labels).
    pub async fn pods(
        &self,
        client: &Client,
        namespace: &str,
        selector: &[(String, String)],
    ) -> Result<Vec<Pod>, kube::Error> {
        if let Some(store) = self.pods.as_ref().filter(|s| is_ready(*s)) {
            let mut pods: Vec<Pod> = store
                .state()
                .iter()
                .filter(|pod| pod.namespace().as_deref() == Some(namespace))
                .filter(|pod| selector.iter().all(|(k, v)| pod.labels().get(k) == Some(v)))
                .map(|pod| (**pod).clone())
                .collect();
            pods.sort_by_key(|pod| pod.name_any());
            return Ok(pods);
        }
        let labels: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let params = ListParams::default().labels(&labels.join(","));
        Ok(Api::<Pod>::namespaced(client.clone(), namespace)
            .list(&params)
            .await?
            .items)
    }
}

fn is_ready<K: kube::Resource + Clone + 'static>(store: &Store<K>) -> bool
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    matches!(store.wait_until_ready().now_or_never(), Some(Ok(())))
}
