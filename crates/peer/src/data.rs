//! [`SessionData`]: typed public data attached to a session.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Mutex;

/// A map from type to value, safe to share between tasks: one value of each
/// type. Handlers use it to keep per-connection state (a user id after
/// authentication, a counter, …).
///
/// ```
/// let data = jaunt_peer::SessionData::default();
/// data.insert(7_u32);
/// assert_eq!(data.get::<u32>(), Some(7));
/// data.update(|n: &mut u32| *n += 1);
/// assert_eq!(data.get::<u32>(), Some(8));
/// assert_eq!(data.remove::<u32>(), Some(8));
/// ```
#[derive(Default)]
pub struct SessionData {
    map: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
}

impl std::fmt::Debug for SessionData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionData")
            .field("len", &self.lock().len())
            .finish()
    }
}

impl SessionData {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TypeId, Box<dyn Any + Send + Sync>>> {
        // A panic while holding the lock cannot leave a map half-updated.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `value`, returning the previous value of its type.
    pub fn insert<T: Any + Send + Sync>(&self, value: T) -> Option<T> {
        self.lock()
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|old| old.downcast().ok().map(|b| *b))
    }

    /// A copy of the value of type `T`.
    pub fn get<T: Any + Send + Sync + Clone>(&self) -> Option<T> {
        self.lock()
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }

    /// Changes the value of type `T` in place (inserting `T::default()` first
    /// if there is none) and returns what `f` returns.
    pub fn update<T: Any + Send + Sync + Default, R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut map = self.lock();
        let slot = map
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()));
        match slot.downcast_mut::<T>() {
            Some(value) => f(value),
            // The map is keyed by TypeId, so the downcast cannot fail.
            None => unreachable!("SessionData slot holds its own type"),
        }
    }

    /// Removes and returns the value of type `T`.
    pub fn remove<T: Any + Send + Sync>(&self) -> Option<T> {
        self.lock()
            .remove(&TypeId::of::<T>())
            .and_then(|old| old.downcast().ok().map(|b| *b))
    }

    /// Whether a value of type `T` is stored.
    pub fn contains<T: Any + Send + Sync>(&self) -> bool {
        self.lock().contains_key(&TypeId::of::<T>())
    }
}
