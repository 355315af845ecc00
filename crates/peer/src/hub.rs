//! The session hub: every live session of a peer, by id.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::wire::{WireCount, WireTotals};
use crate::Session;

#[derive(Default)]
pub(crate) struct Hub {
    map: RwLock<HashMap<Arc<str>, Session>>,
    /// What the sessions that left the hub carried (`wire.rs`): a session's
    /// counts are folded in, under the write lock, as it leaves.
    pub(crate) gone: Arc<WireTotals>,
}

impl Hub {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<Arc<str>, Session>> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<Arc<str>, Session>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a session under its id; a different session that held the id is
    /// returned for the caller to close (outside the lock).
    pub(crate) fn insert(&self, session: &Session) -> Option<Session> {
        let mut map = self.write();
        let old = map.insert(session.id(), session.clone());
        let displaced = old.filter(|old| !old.ptr_eq(session));
        if let Some(displaced) = &displaced {
            displaced.limits().wire.fold();
        }
        displaced
    }

    /// Removes the session if it is the one registered under its id.
    pub(crate) fn remove(&self, session: &Session) {
        let mut map = self.write();
        let id = session.id();
        if map.get(&id).is_some_and(|s| s.ptr_eq(session)) {
            map.remove(&id);
            session.limits().wire.fold();
        }
    }

    /// Moves a session to a new id (calling `set` to change the id while the
    /// hub is locked); returns the session displaced from the new id.
    pub(crate) fn rename(
        &self,
        session: &Session,
        new_id: Arc<str>,
        set: impl FnOnce(),
    ) -> Option<Session> {
        let mut map = self.write();
        let old_id = session.id();
        let registered = map.get(&old_id).is_some_and(|s| s.ptr_eq(session));
        if registered {
            map.remove(&old_id);
        }
        set();
        if registered {
            let displaced = map
                .insert(new_id, session.clone())
                .filter(|s| !s.ptr_eq(session));
            if let Some(displaced) = &displaced {
                displaced.limits().wire.fold();
            }
            displaced
        } else {
            None
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<Session> {
        self.read().get(id).cloned()
    }

    pub(crate) fn all(&self) -> Vec<Session> {
        self.read().values().cloned().collect()
    }

    /// The live sessions (each with its wire counts) and the wire totals
    /// over every session the hub had, read under one lock so that a session
    /// leaving meanwhile is counted once.
    pub(crate) fn all_with_wire(&self) -> (Vec<(Session, WireCount)>, WireCount) {
        let map = self.read();
        let mut total = self.gone.load();
        let sessions = map
            .values()
            .map(|session| {
                let count = session.limits().wire.load();
                total.add(count);
                (session.clone(), count)
            })
            .collect();
        (sessions, total)
    }

    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }
}
