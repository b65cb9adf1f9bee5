//! [`MemoryBackend`]: objects in a map, for tests and throw-away repositories.
//!
//! It keeps exactly the same contract as a real backend (create-only,
//! `Truncated` ranges, idempotent delete), so engine tests that pass against
//! it mean something. Nothing survives the process.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use crate::backend::Backend;
use crate::error::{Result, StoreError, StoreErrorKind};
use crate::handle::{FileType, Handle};

/// What [`Backend::location`] reports for every memory backend.
const LOCATION: &str = "memory";

/// An in-memory backend. Cloning is not offered: share it with `Arc`.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    objects: Mutex<BTreeMap<Handle, Bytes>>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    /// The map. Every operation leaves it consistent, so a panic in another
    /// thread (poisoning) does not make it unusable.
    fn objects(&self) -> MutexGuard<'_, BTreeMap<Handle, Bytes>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, op: &str, handle: &Handle) -> Result<Bytes> {
        self.objects().get(handle).cloned().ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::NotFound,
                format!("cannot {op} {handle} in {LOCATION}: it does not exist"),
            )
        })
    }
}

impl Backend for MemoryBackend {
    fn location(&self) -> String {
        LOCATION.to_owned()
    }

    fn init_layout(&self) -> Result<()> {
        Ok(())
    }

    fn create(&self, handle: &Handle, data: Bytes) -> Result<()> {
        let mut objects = self.objects();
        if objects.contains_key(handle) {
            return Err(StoreError::new(
                StoreErrorKind::AlreadyExists,
                format!("cannot create {handle} in {LOCATION}: it already exists"),
            ));
        }
        objects.insert(handle.clone(), data);
        Ok(())
    }

    fn read(&self, handle: &Handle) -> Result<Bytes> {
        self.get("read", handle)
    }

    fn read_range(&self, handle: &Handle, offset: u64, length: u64) -> Result<Bytes> {
        let data = self.get("read", handle)?;
        let len = data.len() as u64;
        match offset.checked_add(length) {
            // Both bounds are <= data.len(), so they fit in usize.
            Some(end) if end <= len => Ok(data.slice(offset as usize..end as usize)),
            _ => Err(StoreError::truncated(handle, LOCATION, offset, length, len)),
        }
    }

    fn size(&self, handle: &Handle) -> Result<u64> {
        Ok(self.get("get the size of", handle)?.len() as u64)
    }

    fn list(&self, kind: FileType) -> Result<Vec<(String, u64)>> {
        Ok(self
            .objects()
            .iter()
            .filter(|(handle, _)| handle.kind() == kind)
            .map(|(handle, data)| (handle.name().to_owned(), data.len() as u64))
            .collect())
    }

    fn delete(&self, handle: &Handle) -> Result<()> {
        self.objects().remove(handle);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_handle_and_location() {
        let backend = MemoryBackend::new();
        let handle = Handle::new(FileType::Snapshot, "abc").unwrap();
        let err = backend.read(&handle).unwrap_err();
        assert!(err.is_not_found());
        assert_eq!(
            err.to_string(),
            "cannot read snapshot abc in memory: it does not exist"
        );

        backend
            .create(&handle, Bytes::from_static(b"12345"))
            .unwrap();
        let err = backend.read_range(&handle, 3, 3).unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Truncated);
        assert!(err.to_string().contains("snapshot abc in memory"), "{err}");
    }
}
