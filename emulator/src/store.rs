//! The object store: every object as JSON, one global increasing resourceVersion, the
//! retained window of watch events, and the fan-out of those events to watchers.
//!
//! It plays the part of etcd plus the watch cache in kube-apiserver: a write bumps the one
//! global revision (etcd's revision is cluster-wide, apiserver `pkg/storage/etcd3/store.go`),
//! and the last `history` events are kept so a watch can resume from an older
//! resourceVersion, as the watch cache keeps a sliding window (apiserver
//! `pkg/storage/cacher/watch_cache.go`). It knows nothing of HTTP, validation or patches:
//! the registry logic runs inside [`Store::write`] so that each check-then-write is atomic.
//! The lock is never held while writing to a socket; watchers receive `Arc`s and each event
//! is serialized at most once per API version, shared by all watchers.
//!
//! The events the store keeps and fans out, and their wire form, are in `event`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::resources::StoreKind;

mod event;

pub use event::{Event, EventType, filter_meta, line_around, watch_line};

/// Objects are keyed by (namespace, name); cluster-scoped objects have an empty namespace.
/// A `BTreeMap` keeps lists in the order the real server returns them (etcd key order).
pub type Key = (String, String);

/// Where a watch starts.
pub enum WatchStart {
    /// Replay these retained events (rv greater than the requested one), then go live.
    Replay(Vec<Arc<Event>>),
    /// Send the current objects as synthetic ADDED events, then go live.
    Snapshot(Vec<SnapshotItem>),
}

/// One current object for a watch's synthetic ADDED events.
pub struct SnapshotItem {
    /// The object's JSON.
    pub json: Bytes,
    /// Its selector view (see [`filter_meta`]).
    pub meta: Arc<Value>,
}

/// A stored object with its serialized form and selector view, kept together so reads and
/// watch snapshots need no re-serialization.
#[derive(Debug, Clone)]
struct Entry {
    value: Arc<Value>,
    json: Bytes,
    meta: Arc<Value>,
}

/// A consistent view of a list: the objects at `rv`, for paginated continuation.
#[derive(Clone)]
pub struct ListSnapshot {
    /// The resourceVersion the list was taken at.
    pub rv: u64,
    /// The matching objects in key order.
    pub items: Arc<Vec<Arc<Value>>>,
}

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<Event>>,
}

struct Inner {
    rv: u64,
    objects: HashMap<StoreKind, BTreeMap<Key, Entry>>,
    history: VecDeque<Arc<Event>>,
    history_capacity: usize,
    /// Every event with rv greater than this is in `history`.
    window_start: u64,
    snapshots: HashMap<u64, ListSnapshot>,
    snapshot_order: VecDeque<u64>,
    next_snapshot: u64,
}

/// How many paginated list snapshots are kept for `continue` tokens; the oldest is dropped
/// first, and continuing from a dropped one answers 410 Expired as a compacted etcd would.
const MAX_SNAPSHOTS: usize = 256;

/// Capacity of the fan-out channel: a watcher that falls this many events behind is closed,
/// as the watch cache closes a watcher whose buffer is full (apiserver
/// `pkg/storage/cacher/cache_watcher.go`, `add` with a timeout).
const FANOUT_CAPACITY: usize = 65_536;

impl Store {
    /// An empty store retaining `history` watch events.
    pub fn new(history: usize) -> Store {
        let (events, _) = broadcast::channel(FANOUT_CAPACITY);
        Store {
            inner: Mutex::new(Inner {
                rv: 0,
                objects: HashMap::new(),
                history: VecDeque::new(),
                history_capacity: history.max(1),
                window_start: 0,
                snapshots: HashMap::new(),
                snapshot_order: VecDeque::new(),
                next_snapshot: 1,
            }),
            events,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every mutation is a single
        // insert/remove), so a poisoned lock is still safe to use.
        crate::sync::lock(&self.inner)
    }

    /// Runs `f` with exclusive access; every check and write inside is atomic.
    pub fn write<R>(&self, f: impl FnOnce(&mut Txn<'_>) -> R) -> R {
        let mut inner = self.lock();
        let mut txn = Txn {
            inner: &mut inner,
            events: &self.events,
        };
        f(&mut txn)
    }

    /// The object at `key`, if any.
    pub fn get(&self, store: StoreKind, key: &Key) -> Option<Arc<Value>> {
        self.lock()
            .objects
            .get(&store)
            .and_then(|m| m.get(key))
            .map(|e| e.value.clone())
    }

    /// The object at `key` as the JSON stored at its last write (no re-serialization).
    pub fn get_json(&self, store: StoreKind, key: &Key) -> Option<Bytes> {
        self.lock()
            .objects
            .get(&store)
            .and_then(|m| m.get(key))
            .map(|e| e.json.clone())
    }

    /// The current (latest) resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// All objects of a store (optionally one namespace) in key order, with the RV of the
    /// view.
    pub fn list(&self, store: StoreKind, namespace: Option<&str>) -> (u64, Vec<Arc<Value>>) {
        let inner = self.lock();
        (inner.rv, inner.select(store, namespace))
    }

    /// Keeps `items` for continuation and returns the snapshot id.
    pub fn save_snapshot(&self, snapshot: ListSnapshot) -> u64 {
        let mut inner = self.lock();
        let id = inner.next_snapshot;
        inner.next_snapshot += 1;
        inner.snapshots.insert(id, snapshot);
        inner.snapshot_order.push_back(id);
        while inner.snapshot_order.len() > MAX_SNAPSHOTS {
            if let Some(old) = inner.snapshot_order.pop_front() {
                inner.snapshots.remove(&old);
            }
        }
        id
    }

    /// The snapshot of a continue token, unless it has expired (dropped, or its RV has left
    /// the retained window).
    pub fn snapshot(&self, id: u64) -> Option<ListSnapshot> {
        let inner = self.lock();
        let snap = inner.snapshots.get(&id)?;
        (snap.rv >= inner.window_start).then(|| snap.clone())
    }

    /// Subscribes a watcher to `store`, starting after `from` (`None`: from the current
    /// state as synthetic ADDED events). Returns the start, the live receiver, and the RV the
    /// watcher is consistent with. Err carries the oldest resumable RV when `from` is older
    /// than the retained window.
    #[allow(clippy::type_complexity)]
    pub fn subscribe(
        &self,
        store: StoreKind,
        namespace: Option<&str>,
        from: Option<u64>,
    ) -> Result<(WatchStart, broadcast::Receiver<Arc<Event>>, u64), u64> {
        let inner = self.lock();
        let rx = self.events.subscribe();
        let start = match from {
            None => WatchStart::Snapshot(
                inner
                    .entries(store, namespace)
                    .map(|e| SnapshotItem {
                        json: e.json.clone(),
                        meta: e.meta.clone(),
                    })
                    .collect(),
            ),
            Some(rv) => {
                if rv < inner.window_start {
                    return Err(inner.window_start);
                }
                let skip = inner.history.partition_point(|e| e.rv <= rv);
                WatchStart::Replay(
                    inner
                        .history
                        .iter()
                        .skip(skip)
                        .filter(|e| e.store == store)
                        .cloned()
                        .collect(),
                )
            }
        };
        Ok((start, rx, inner.rv))
    }

    /// Drops the retained event window and every list snapshot: a watch resuming from any
    /// RV older than now, or a continue token, gets 410 Expired, as after an etcd
    /// compaction.
    pub fn expire_history(&self) {
        let mut inner = self.lock();
        inner.history.clear();
        inner.window_start = inner.rv;
        inner.snapshots.clear();
        inner.snapshot_order.clear();
    }
}

impl Inner {
    fn entries<'a>(
        &'a self,
        store: StoreKind,
        namespace: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = &'a Entry> + 'a> {
        let Some(map) = self.objects.get(&store) else {
            return Box::new(std::iter::empty());
        };
        match namespace {
            None => Box::new(map.values()),
            Some(ns) => Box::new(
                map.range((ns.to_string(), String::new())..)
                    .take_while(move |((n, _), _)| n == ns)
                    .map(|(_, e)| e),
            ),
        }
    }

    fn select(&self, store: StoreKind, namespace: Option<&str>) -> Vec<Arc<Value>> {
        self.entries(store, namespace)
            .map(|e| e.value.clone())
            .collect()
    }
}

/// Exclusive access to the store during one request's check-then-write.
pub struct Txn<'a> {
    inner: &'a mut Inner,
    events: &'a broadcast::Sender<Arc<Event>>,
}

impl Txn<'_> {
    /// The object at `key`, if any.
    pub fn get(&self, store: StoreKind, key: &Key) -> Option<Arc<Value>> {
        self.inner
            .objects
            .get(&store)
            .and_then(|m| m.get(key))
            .map(|e| e.value.clone())
    }

    /// The objects of `store` in `namespace` (all namespaces when `None`).
    pub fn list(&self, store: StoreKind, namespace: Option<&str>) -> Vec<Arc<Value>> {
        self.inner.select(store, namespace)
    }

    /// Stores `object` at `key` under a new resourceVersion (written into
    /// `metadata.resourceVersion`) and publishes ADDED or MODIFIED.
    pub fn put(&mut self, store: StoreKind, key: Key, mut object: Value) -> Arc<Value> {
        self.inner.rv += 1;
        let rv = self.inner.rv;
        set_resource_version(&mut object, rv);
        let meta = Arc::new(filter_meta(&object));
        let map = self.inner.objects.entry(store).or_default();
        let prev = map.get(&key).cloned();
        let kind = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        let event = Event::new(rv, kind, store, &object, meta.clone(), prev.as_ref());
        let value = Arc::new(object);
        map.insert(
            key,
            Entry {
                value: value.clone(),
                json: event.object_json().clone(),
                meta,
            },
        );
        self.publish(event);
        value
    }

    /// Removes the object at `key` under a new resourceVersion and publishes DELETED with
    /// its last state carrying that RV (as the etcd3 watcher does for deletes, apiserver
    /// `pkg/storage/etcd3/watcher.go`, `prepareObjs`/`transform`).
    pub fn remove(&mut self, store: StoreKind, key: &Key) -> Option<Arc<Value>> {
        let old = self.inner.objects.get_mut(&store)?.remove(key)?;
        self.inner.rv += 1;
        let rv = self.inner.rv;
        let mut last = (*old.value).clone();
        set_resource_version(&mut last, rv);
        let event = Event::new(rv, EventType::Deleted, store, &last, old.meta.clone(), None);
        self.publish(event);
        Some(Arc::new(last))
    }

    fn publish(&mut self, event: Event) {
        let event = Arc::new(event);
        self.inner.history.push_back(event.clone());
        while self.inner.history.len() > self.inner.history_capacity {
            if let Some(old) = self.inner.history.pop_front() {
                self.inner.window_start = old.rv;
            }
        }
        // No receiver is not an error: nobody is watching.
        let _ = self.events.send(event);
    }
}

/// Writes `rv` as the string `metadata.resourceVersion` (creating `metadata` if needed).
pub fn set_resource_version(object: &mut Value, rv: u64) {
    if let Some(obj) = object.as_object_mut() {
        let meta = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str) -> Key {
        (String::new(), name.to_string())
    }

    #[test]
    fn every_write_bumps_the_one_global_resource_version() {
        let store = Store::new(10);
        let a = store.write(|t| t.put(StoreKind::Nodes, key("a"), json!({"metadata":{}})));
        let b = store.write(|t| t.put(StoreKind::Leases, key("b"), json!({"metadata":{}})));
        assert_eq!(a["metadata"]["resourceVersion"], "1");
        assert_eq!(b["metadata"]["resourceVersion"], "2");
        let gone = store.write(|t| t.remove(StoreKind::Nodes, &key("a")));
        assert_eq!(
            gone.map(|g| g["metadata"]["resourceVersion"].clone()),
            Some(json!("3"))
        );
        assert_eq!(store.current_rv(), 3);
    }

    #[test]
    fn resuming_before_the_retained_window_is_refused() {
        let store = Store::new(2);
        for i in 0..4 {
            store.write(|t| t.put(StoreKind::Nodes, key(&format!("n{i}")), json!({})));
        }
        // Events 3 and 4 are retained: resuming from 2 works, from 1 does not.
        assert!(store.subscribe(StoreKind::Nodes, None, Some(2)).is_ok());
        assert_eq!(
            store.subscribe(StoreKind::Nodes, None, Some(1)).err(),
            Some(2)
        );
        store.expire_history();
        assert_eq!(
            store.subscribe(StoreKind::Nodes, None, Some(3)).err(),
            Some(4)
        );
    }

    #[test]
    fn replay_returns_only_later_events_of_the_watched_store() {
        let store = Store::new(10);
        store.write(|t| t.put(StoreKind::Nodes, key("a"), json!({})));
        store.write(|t| t.put(StoreKind::Leases, key("l"), json!({})));
        store.write(|t| t.put(StoreKind::Nodes, key("a"), json!({"x":1})));
        let Ok((WatchStart::Replay(events), _, rv)) =
            store.subscribe(StoreKind::Nodes, None, Some(1))
        else {
            panic!("expected a replay");
        };
        assert_eq!(rv, 3);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventType::Modified);
        let line = events[0].wire(false);
        assert!(line.ends_with(b"\n"));
        let parsed: Value = serde_json::from_slice(&line).expect("json line");
        assert_eq!(
            parsed,
            json!({"type":"MODIFIED","object":{"metadata":{"resourceVersion":"3"},"x":1}})
        );
    }
}
