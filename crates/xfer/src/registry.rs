use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::{XferError, XferFilter};

/// The most filters one frame can name (the count is one byte).
pub const MAX_FILTERS: usize = 255;

/// The set of transfer filters a peer understands, looked up by id.
///
/// A registry is a plain value: a peer owns one (usually behind an [`Arc`])
/// and there is no process-wide global.
#[derive(Clone)]
pub struct XferRegistry {
    // Indexed by filter id; slot 0 is always empty.
    by_id: Vec<Option<Arc<dyn XferFilter>>>,
}

impl Default for XferRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for XferRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|x| (char::from(x.id()), x.name())))
            .finish()
    }
}

impl XferRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            by_id: vec![None; 256],
        }
    }

    /// A registry with the Go ecosystem's conventional filters, as far as the
    /// enabled cargo features provide them: gzip as `g` (default level) and the
    /// MD5 checksum as `m`.
    pub fn with_defaults() -> Self {
        #[allow(unused_mut)]
        let mut registry = Self::new();
        #[cfg(feature = "gzip")]
        registry
            .register(crate::GzipFilter::default())
            .expect("empty registry has room for gzip");
        #[cfg(feature = "md5")]
        registry
            .register(crate::Md5Filter::default())
            .expect("empty registry has room for md5");
        registry
    }

    /// Adds a filter. Fails if its id is 0, or its id or name is taken.
    pub fn register(&mut self, filter: impl XferFilter) -> Result<(), XferError> {
        self.register_arc(Arc::new(filter))
    }

    /// Adds a shared filter. Fails if its id is 0, or its id or name is taken.
    pub fn register_arc(&mut self, filter: Arc<dyn XferFilter>) -> Result<(), XferError> {
        let id = filter.id();
        if id == 0 {
            return Err(XferError::ReservedId);
        }
        if self.by_id[usize::from(id)].is_some() {
            return Err(XferError::DuplicateId { id });
        }
        if self.iter().any(|f| f.name() == filter.name()) {
            return Err(XferError::DuplicateName {
                name: filter.name().to_owned(),
            });
        }
        self.by_id[usize::from(id)] = Some(filter);
        Ok(())
    }

    /// The filter registered under `id`.
    pub fn get(&self, id: u8) -> Result<&Arc<dyn XferFilter>, XferError> {
        self.by_id[usize::from(id)]
            .as_ref()
            .ok_or(XferError::UnknownId { id })
    }

    /// The filter registered under `name`.
    pub fn get_by_name(&self, name: &str) -> Option<&Arc<dyn XferFilter>> {
        self.iter().find(|f| f.name() == name)
    }

    /// Every registered filter, by increasing id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn XferFilter>> {
        self.by_id.iter().flatten()
    }

    /// Checks that every id in `ids` is registered and that there are at most
    /// [`MAX_FILTERS`] of them.
    pub fn check(&self, ids: &[u8]) -> Result<(), XferError> {
        if ids.len() > MAX_FILTERS {
            return Err(XferError::TooMany { count: ids.len() });
        }
        ids.iter().try_for_each(|&id| self.get(id).map(drop))
    }

    /// Runs an outgoing payload through the filters named by `ids` (outer-most
    /// first): the last id's filter runs first.
    pub fn pack(&self, ids: &[u8], mut payload: Bytes) -> Result<Bytes, XferError> {
        self.check(ids)?;
        for &id in ids.iter().rev() {
            payload = self.get(id)?.on_pack(payload)?;
        }
        Ok(payload)
    }

    /// Undoes [`pack`](Self::pack): the first id's filter runs first. No
    /// intermediate result may exceed `max_len` bytes.
    pub fn unpack(
        &self,
        ids: &[u8],
        mut payload: Bytes,
        max_len: usize,
    ) -> Result<Bytes, XferError> {
        self.check(ids)?;
        for &id in ids {
            payload = self.get(id)?.on_unpack(payload, max_len)?;
        }
        Ok(payload)
    }
}
