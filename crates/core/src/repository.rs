//! The repository façade: init, open, and typed access to its objects.
//!
//! Layout (see `docs/FORMAT.md`): `config`, `keys/<id>`, `data/<xx>/<id>`,
//! `index/<id>`, `snapshots/<id>`, `locks/<id>`. Every object except `config`
//! is named by the BLAKE3 of its bytes and written create-only; readers check
//! the name before trusting the bytes.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use vault_store::{Backend, FileType, Handle, StoreErrorKind};

use crate::blob::{apply_delta, open_body, BlobType, Body, Compression};
use crate::chunker::ChunkerParams;
use crate::config::{Config, DEFAULT_PACK_SIZE, REPO_VERSION};
use crate::crypto::{self, KdfParams, Keys, MasterKey};
use crate::error::{Error, Result};
use crate::id::{object_hash, BlobId, IndexId, KeyId, SnapshotId};
use crate::index::{IndexFile, Location, SqliteIndex};
use crate::snapshot::{Snapshot, SnapshotFilter};
use crate::tree::{decode_list, Tree};

const CONFIG_AD: &[u8] = b"vault config v1";
const KEY_AD: &[u8] = b"vault key v1";
const SNAPSHOT_AD: &[u8] = b"vault snapshot v1";
const KEY_VERSION: u32 = 1;

/// Settings fixed when a repository is created.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Chunk size bounds.
    pub chunker: ChunkerParams,
    /// Compression of new blobs.
    pub compression: Compression,
    /// Target pack size in bytes.
    pub pack_size: u32,
    /// Delta-encode similar chunks (on by default).
    pub delta: bool,
    /// argon2id cost for the first key.
    pub kdf: KdfParams,
    /// Recorded in the key object.
    pub hostname: String,
    /// Recorded in the key object.
    pub username: String,
    /// Creation time (RFC 3339), recorded in config and key.
    pub time: String,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            chunker: ChunkerParams::default(),
            compression: Compression::default(),
            pack_size: DEFAULT_PACK_SIZE,
            delta: true,
            kdf: KdfParams::default(),
            hostname: String::new(),
            username: String::new(),
            time: jiff::Timestamp::now().to_string(),
        }
    }
}

/// How to open a repository.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Directory for local caches; `None` keeps the index cache in memory.
    pub cache_dir: Option<PathBuf>,
    /// Lifetime and refresh interval of the leases and locks this handle
    /// takes (shorter ones in tests).
    pub lock_timing: crate::lock::LockTiming,
}

/// A key object: the master key sealed under a password.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyFile {
    /// Format version of key objects.
    pub version: u32,
    /// When it was added.
    pub created: String,
    /// Host that added it.
    pub hostname: String,
    /// User that added it.
    pub username: String,
    /// Always `argon2id`.
    pub kdf: String,
    /// argon2id cost.
    pub kdf_params: KdfParams,
    /// argon2id salt (hex).
    pub salt: String,
    /// `seal(argon2id(password, salt), "vault key v1", master key)` (hex).
    pub sealed_master: String,
}

impl KeyFile {
    pub(crate) fn new(
        master: &MasterKey,
        password: &[u8],
        kdf: KdfParams,
        hostname: &str,
        username: &str,
        time: &str,
    ) -> Result<KeyFile> {
        let salt: [u8; 32] = crypto::random_bytes();
        let kek = kdf.derive(password, &salt).map_err(Error::Invalid)?;
        Ok(KeyFile {
            version: KEY_VERSION,
            created: time.to_owned(),
            hostname: hostname.to_owned(),
            username: username.to_owned(),
            kdf: "argon2id".into(),
            kdf_params: kdf,
            salt: hex::encode(salt),
            sealed_master: hex::encode(crypto::seal(&kek, KEY_AD, master.expose())),
        })
    }

    /// Decodes a key object, checking its version and parameters.
    pub fn decode(id: &str, bytes: &[u8]) -> Result<KeyFile> {
        let what = format!("key {id}");
        let k: KeyFile =
            serde_json::from_slice(bytes).map_err(|e| Error::corrupt(&what, e.to_string()))?;
        if k.version != KEY_VERSION {
            return Err(Error::UnsupportedVersion {
                what,
                found: k.version,
                supported: KEY_VERSION,
            });
        }
        if k.kdf != "argon2id" {
            return Err(Error::corrupt(
                &what,
                format!("unknown key derivation `{}`", k.kdf),
            ));
        }
        k.kdf_params
            .validate()
            .map_err(|e| Error::corrupt(&what, e))?;
        Ok(k)
    }

    /// The master key, if `password` opens this key.
    pub fn unlock(&self, password: &[u8]) -> Option<MasterKey> {
        let salt = hex::decode(&self.salt).ok()?;
        let kek = self.kdf_params.derive(password, &salt).ok()?;
        let sealed = hex::decode(&self.sealed_master).ok()?;
        let plain = crypto::open(&kek, KEY_AD, &sealed).ok()?;
        Some(MasterKey::from_bytes(plain.try_into().ok()?))
    }
}

/// An open repository.
pub struct Repository {
    backend: Arc<dyn Backend>,
    config: Config,
    /// Kept to seal it under new passwords (`key add`, `key passwd`).
    master: MasterKey,
    keys: Keys,
    key_id: KeyId,
    index: SqliteIndex,
    lock_timing: crate::lock::LockTiming,
    /// Blobs of stored packs that no index object names, read on the first
    /// index miss (see [`Repository::lookup`]).
    outside_index: std::sync::OnceLock<HashMap<BlobId, Location>>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("location", &self.backend.location())
            .field("id", &self.config.id)
            .finish_non_exhaustive()
    }
}

fn map_not_found(backend: &dyn Backend) -> impl Fn(vault_store::StoreError) -> Error + '_ {
    move |e| {
        if e.is_not_found() {
            Error::RepositoryNotFound {
                location: backend.location(),
            }
        } else {
            Error::Store(e)
        }
    }
}

impl Repository {
    /// Creates a repository at an empty location and returns its config.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use vault_core::{InitOptions, KdfParams, OpenOptions, Repository};
    /// let backend = Arc::new(vault_store::MemoryBackend::new());
    /// let opts = InitOptions { kdf: KdfParams::insecure_for_tests(), ..Default::default() };
    /// Repository::init(backend.clone(), b"secret", &opts)?;
    /// let repo = Repository::open(backend, b"secret", &OpenOptions::default())?;
    /// assert!(repo.list_snapshots()?.is_empty());
    /// # Ok::<(), vault_core::Error>(())
    /// ```
    pub fn init(backend: Arc<dyn Backend>, password: &[u8], opts: &InitOptions) -> Result<Config> {
        match backend.size(&Handle::config()) {
            Ok(_) => {
                return Err(Error::RepositoryExists {
                    location: backend.location(),
                })
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        opts.chunker.validate().map_err(Error::Invalid)?;
        if !(1 << 20..=1 << 30).contains(&opts.pack_size) {
            return Err(Error::Invalid(format!(
                "pack size {} must be between 1 MiB and 1 GiB",
                opts.pack_size
            )));
        }
        backend.init_layout()?;
        let master = MasterKey::generate();
        let key = KeyFile::new(
            &master,
            password,
            opts.kdf,
            &opts.hostname,
            &opts.username,
            &opts.time,
        )?;
        let key_bytes = serde_json::to_vec_pretty(&key).expect("key serializes");
        put_content_addressed(&*backend, FileType::Key, Bytes::from(key_bytes))?;
        let config = Config {
            version: REPO_VERSION,
            id: hex::encode(crypto::random_bytes::<32>()),
            chunker: opts.chunker,
            compression: opts.compression,
            pack_size: opts.pack_size,
            delta: opts.delta && opts.compression.zstd_level.is_some(),
            created: opts.time.clone(),
        };
        let plain = serde_json::to_vec(&config).expect("config serializes");
        let sealed = master.keys().seal(CONFIG_AD, &plain);
        backend
            .create(&Handle::config(), Bytes::from(sealed))
            .map_err(|e| {
                if e.kind() == StoreErrorKind::AlreadyExists {
                    Error::RepositoryExists {
                        location: backend.location(),
                    }
                } else {
                    e.into()
                }
            })?;
        Ok(config)
    }

    /// Opens a repository with a password, and brings the local index cache up
    /// to date.
    pub fn open(
        backend: Arc<dyn Backend>,
        password: &[u8],
        opts: &OpenOptions,
    ) -> Result<Repository> {
        let sealed_config = backend
            .read(&Handle::config())
            .map_err(map_not_found(&*backend))?;
        let keys = backend.list(FileType::Key)?;
        let mut unlocked_foreign = None;
        let mut found = None;
        let mut damaged = 0;
        for (name, _) in &keys {
            let bytes = backend.read(&Handle::new(FileType::Key, name.clone())?)?;
            if hex::encode(object_hash(&bytes)) != *name {
                damaged += 1;
                continue; // damaged or renamed: a good key may follow
            }
            let key = match KeyFile::decode(name, &bytes) {
                Ok(k) => k,
                Err(e @ Error::UnsupportedVersion { .. }) => return Err(e),
                Err(_) => {
                    damaged += 1;
                    continue;
                }
            };
            let Some(master) = key.unlock(password) else {
                continue;
            };
            let id = KeyId::from_hex(name).expect("checked above");
            // A key that unlocks but does not open the config belongs to
            // another repository (or a crashed init): keep looking.
            match master.keys().open(CONFIG_AD, &sealed_config) {
                Ok(plain) => {
                    found = Some((master, id, plain));
                    break;
                }
                Err(_) => unlocked_foreign = Some(id),
            }
        }
        let Some((master, key_id, plain)) = found else {
            if let Some(id) = unlocked_foreign {
                return Err(Error::corrupt(
                    "config",
                    format!("the password opens key {id}, but that key does not open this repository's config: the key belongs to another repository, or config was altered"),
                ));
            }
            if damaged > 0 && damaged == keys.len() {
                return Err(Error::corrupt(
                    "keys",
                    format!("all {damaged} key object(s) are damaged (content does not match the name or does not decode); restore keys/ from a copy"),
                ));
            }
            return Err(Error::WrongPassword {
                location: backend.location(),
                keys: keys.len(),
            });
        };
        let keys = master.keys();
        let config = decode_versioned::<Config>("config", &plain, REPO_VERSION)?;
        if !(1 << 20..=1 << 30).contains(&config.pack_size)
            || config
                .compression
                .zstd_level
                .is_some_and(|l| !(-7..=22).contains(&l))
        {
            return Err(Error::corrupt(
                "config",
                "pack size or compression level out of range",
            ));
        }
        config
            .chunker
            .validate()
            .map_err(|e| Error::corrupt("config", e))?;
        let cache_path = opts
            .cache_dir
            .as_ref()
            .map(|d| d.join(&config.id).join("index.sqlite"));
        let index = SqliteIndex::open(cache_path.as_deref())?;
        let repo = Repository {
            backend,
            config,
            master,
            keys,
            key_id,
            index,
            lock_timing: opts.lock_timing,
            outside_index: Default::default(),
        };
        repo.refresh_index()?;
        Ok(repo)
    }

    /// The same repository with an index cache of its own, built from exactly
    /// the index objects `present` (prune: its view must not change under it
    /// when another process updates the shared cache, nor include index
    /// objects it did not list). The cache file lives in a temporary directory
    /// next to the shared one (in memory without a cache directory), removed
    /// when the returned guard drops.
    ///
    /// Also returns, per index object that names its writer, the writer's
    /// lease identity and the packs it lists.
    #[allow(clippy::type_complexity)]
    pub(crate) fn with_private_index(
        &self,
        present: &[IndexId],
    ) -> Result<(
        Repository,
        Option<tempfile::TempDir>,
        Vec<(String, Vec<crate::id::PackId>)>,
    )> {
        let shared = self.index.path();
        let dir = match shared.parent() {
            Some(d) if shared != std::path::Path::new(":memory:") => Some(
                tempfile::Builder::new()
                    .prefix("private-index-")
                    .tempdir_in(d)
                    .map_err(|e| Error::cache(d, e))?,
            ),
            _ => None,
        };
        let path = dir.as_ref().map(|d| d.path().join("index.sqlite"));
        let index = SqliteIndex::open(path.as_deref())?;
        let writers = std::sync::Mutex::new(Vec::new());
        index.sync(present, |id| {
            let f = self.load_index(id)?;
            if let Some(w) = &f.writer {
                let packs = f.packs.iter().map(|(p, _)| *p).collect();
                writers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((w.clone(), packs));
            }
            Ok(f)
        })?;
        let repo = Repository {
            backend: self.backend.clone(),
            config: self.config.clone(),
            master: self.master.clone(),
            keys: self.keys.clone(),
            key_id: self.key_id,
            index,
            lock_timing: self.lock_timing,
            outside_index: Default::default(),
        };
        Ok((
            repo,
            dir,
            writers.into_inner().unwrap_or_else(|p| p.into_inner()),
        ))
    }

    /// Reads index objects the cache has not seen (and rebuilds it if some it
    /// had are gone).
    pub fn refresh_index(&self) -> Result<usize> {
        let present = self.index_ids()?;
        self.index.sync(&present, |id| self.load_index(id))
    }

    /// The index objects in the repository.
    pub fn index_ids(&self) -> Result<Vec<IndexId>> {
        Ok(self
            .backend
            .list(FileType::Index)?
            .into_iter()
            .filter_map(|(n, _)| IndexId::from_hex(&n))
            .collect())
    }

    /// Lifetime and refresh interval of the leases and locks this handle takes.
    pub fn lock_timing(&self) -> crate::lock::LockTiming {
        self.lock_timing
    }

    /// The storage backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Working keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The key object this repository was opened with.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The master key (to seal it under another password).
    pub(crate) fn master_key(&self) -> &MasterKey {
        &self.master
    }

    /// The blob index cache.
    pub fn index(&self) -> &SqliteIndex {
        &self.index
    }

    /// Reads a content-addressed object and checks it against its name.
    pub fn read_object(&self, kind: FileType, hex_id: &str) -> Result<Bytes> {
        let bytes = self.backend.read(&Handle::new(kind, hex_id)?)?;
        if hex::encode(object_hash(&bytes)) != hex_id {
            return Err(Error::corrupt(
                format!("{} {hex_id}", kind.name()),
                "content does not match its name",
            ));
        }
        Ok(bytes)
    }

    /// Stores bytes under their BLAKE3 name (create-only; an identical
    /// existing object is fine). Returns the name.
    pub fn write_object(&self, kind: FileType, bytes: Bytes) -> Result<[u8; 32]> {
        put_content_addressed(&*self.backend, kind, bytes)
    }

    /// Opens one index object.
    pub fn load_index(&self, id: &IndexId) -> Result<IndexFile> {
        let bytes = self.read_object(FileType::Index, &id.to_hex())?;
        IndexFile::open(&self.keys, id, &bytes)
    }

    /// Stores an index object and adds it to the cache.
    pub fn save_index(&self, file: &IndexFile) -> Result<IndexId> {
        let id = IndexId(self.write_object(FileType::Index, Bytes::from(file.seal(&self.keys)))?);
        self.index.ingest(&id, file)?;
        Ok(id)
    }

    /// Stores a snapshot object: the commit point of a backup.
    pub fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotId> {
        let plain = serde_json::to_vec(snapshot).expect("snapshot serializes");
        let sealed = self.keys.seal(SNAPSHOT_AD, &plain);
        Ok(SnapshotId(
            self.write_object(FileType::Snapshot, Bytes::from(sealed))?,
        ))
    }

    /// Opens one snapshot object.
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        let bytes = self.read_object(FileType::Snapshot, &id.to_hex())?;
        let what = || format!("snapshot {}", id.to_hex());
        let plain = self
            .keys
            .open(SNAPSHOT_AD, &bytes)
            .map_err(|e| Error::corrupt(what(), e.to_string()))?;
        decode_versioned(&what(), &plain, crate::snapshot::SNAPSHOT_VERSION)
    }

    /// Ids of all snapshot objects.
    pub fn snapshot_ids(&self) -> Result<Vec<SnapshotId>> {
        Ok(self
            .backend
            .list(FileType::Snapshot)?
            .into_iter()
            .filter_map(|(n, _)| SnapshotId::from_hex(&n))
            .collect())
    }

    /// All readable snapshots, oldest first. Damaged ones are left out; see
    /// [`Repository::list_snapshots_checked`] to learn about them.
    pub fn list_snapshots(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        Ok(self.list_snapshots_checked()?.0)
    }

    /// All snapshots, oldest first, and the ones that could not be read.
    /// One damaged snapshot never hides the others.
    #[allow(clippy::type_complexity)]
    pub fn list_snapshots_checked(
        &self,
    ) -> Result<(Vec<(SnapshotId, Snapshot)>, Vec<(SnapshotId, Error)>)> {
        let ids = self.snapshot_ids()?;
        let loaded: Vec<(SnapshotId, Result<(Snapshot, jiff::Timestamp)>)> = ids
            .par_iter()
            .map(|id| {
                let r = self.load_snapshot(id).and_then(|s| {
                    let t = s.timestamp()?;
                    Ok((s, t))
                });
                (*id, r)
            })
            .collect();
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (id, r) in loaded {
            match r {
                Ok((s, t)) => good.push((id, s, t)),
                // An unreachable store is not a damaged snapshot.
                Err(Error::Store(e)) if !e.is_not_found() => return Err(Error::Store(e)),
                Err(e) => bad.push((id, e)),
            }
        }
        good.sort_by(|a, b| a.2.cmp(&b.2).then(a.0.cmp(&b.0)));
        Ok((good.into_iter().map(|(i, s, _)| (i, s)).collect(), bad))
    }

    /// Resolves `latest`, a full id or a unique prefix of at least 4 hex digits,
    /// among snapshots that pass `filter`.
    pub fn find_snapshot(
        &self,
        spec: &str,
        filter: &SnapshotFilter,
    ) -> Result<(SnapshotId, Snapshot)> {
        if spec == "latest" {
            let all = self.list_snapshots()?;
            return all
                .into_iter()
                .rev()
                .find(|(_, s)| filter.matches(s))
                .ok_or_else(|| {
                    Error::Invalid(
                        "no snapshot matches: run `vault snapshots` to see what exists".into(),
                    )
                });
        }
        let spec_l = spec.to_ascii_lowercase();
        if spec_l.len() < 4 || !spec_l.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!(
                "`{spec}` is not a snapshot id: give `latest`, a full id, or at least 4 hex digits of one"
            )));
        }
        let matches: Vec<SnapshotId> = self
            .snapshot_ids()?
            .into_iter()
            .filter(|id| id.to_hex().starts_with(&spec_l))
            .collect();
        let mut found = Vec::new();
        for id in matches {
            let s = self.load_snapshot(&id)?;
            if filter.matches(&s) {
                found.push((id, s));
            }
        }
        match found.len() {
            0 => Err(Error::Invalid(format!(
                "no snapshot `{spec}` (run `vault snapshots` to list them)"
            ))),
            1 => Ok(found.pop().expect("one")),
            n => Err(Error::Invalid(format!(
                "`{spec}` matches {n} snapshots: give more digits"
            ))),
        }
    }

    /// Where a blob is stored: the index, or else a stored pack that no
    /// index object names. A backup that ran during a prune may have
    /// committed a snapshot that uses blobs of packs the prune dropped from
    /// the index (the backup read the index before the prune rewrote it);
    /// those packs stay until the next prune has copied such blobs back into
    /// the index, and meanwhile the blobs are read from them here.
    /// Deduplication never uses these (it asks the index alone), so no backup
    /// starting later comes to rely on a pack about to go.
    pub fn lookup(&self, id: &BlobId) -> Result<Option<Location>> {
        if let Some(l) = self.index.get(id)? {
            return Ok(Some(l));
        }
        Ok(self.outside_index()?.get(id).copied())
    }

    /// What the stored packs outside the index hold, read on the first
    /// index miss and kept for this handle. These are few: the leftovers of
    /// prunes and interrupted backups. A pack whose header is damaged is
    /// left out; a store that fails is an error (and nothing is kept, so a
    /// later miss tries again). Of several copies of a blob, a whole one is
    /// preferred (a delta's base may be gone with its pack).
    fn outside_index(&self) -> Result<&HashMap<BlobId, Location>> {
        if let Some(m) = self.outside_index.get() {
            return Ok(m);
        }
        let outside = self.unindexed_packs()?;
        let headers: Vec<(crate::id::PackId, Vec<crate::pack::PackEntry>)> = outside
            .par_iter()
            .map(|(pack, size)| match self.pack_header(pack, *size) {
                Ok(entries) => Ok(Some((*pack, entries))),
                Err(Error::Store(e)) if !e.is_not_found() => Err(Error::Store(e)),
                // Damaged, or deleted since the listing.
                Err(_) => Ok(None),
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        let mut map: HashMap<BlobId, Location> = HashMap::new();
        for (pack, entries) in headers {
            for e in entries {
                let loc = Location {
                    kind: e.kind,
                    pack,
                    offset: e.offset,
                    length: e.length,
                    raw_length: e.raw_length,
                    base: e.base,
                };
                match map.get(&e.id) {
                    Some(have) if have.base.is_none() || loc.base.is_some() => {}
                    _ => {
                        map.insert(e.id, loc);
                    }
                }
            }
        }
        Ok(self.outside_index.get_or_init(|| map))
    }

    /// The stored packs (with their sizes) that no index object in the cache
    /// names: what interrupted backups and prunes left, and what prunes
    /// dropped for a later deletion.
    pub(crate) fn unindexed_packs(&self) -> Result<Vec<(crate::id::PackId, u64)>> {
        let known = self.index.pack_ids()?;
        Ok(self
            .backend
            .list(FileType::Pack)?
            .into_iter()
            .filter_map(|(n, size)| crate::id::PackId::from_hex(&n).map(|p| (p, size)))
            .filter(|(p, _)| !known.contains(p))
            .collect())
    }

    /// Where a blob is stored.
    pub fn locate(&self, id: &BlobId) -> Result<Location> {
        self.lookup(id)?.ok_or_else(|| {
            Error::corrupt(
                format!("blob {}", id.to_hex()),
                "not found in the index (its pack or index object is missing)",
            )
        })
    }

    /// Where a blob is stored, checking it is indexed as `kind`.
    fn locate_as(&self, kind: BlobType, id: &BlobId) -> Result<Location> {
        let loc = self.locate(id)?;
        if loc.kind != kind {
            return Err(Error::corrupt(
                format!("blob {}", id.to_hex()),
                format!(
                    "indexed as {} but needed as {}",
                    loc.kind.name(),
                    kind.name()
                ),
            ));
        }
        Ok(loc)
    }

    /// Reads, opens and verifies one blob (a delta blob together with its base).
    pub fn read_blob(&self, kind: BlobType, id: &BlobId) -> Result<Vec<u8>> {
        let loc = self.locate_as(kind, id)?;
        let handle = Handle::new(FileType::Pack, loc.pack.to_hex())?;
        let sealed =
            self.backend
                .read_range(&handle, u64::from(loc.offset), u64::from(loc.length))?;
        match open_body(&self.keys, kind, id, &sealed, loc.raw_length)? {
            Body::Whole(plain) => Ok(plain),
            Body::Delta { base, frame } => {
                check_base(id, &loc, &base)?;
                let base_plain = self.read_base(id, &base)?;
                apply_delta(&self.keys, kind, id, &base_plain, &frame, loc.raw_length)
            }
        }
    }

    /// Reads the base of the delta blob `of`: it must be indexed and whole.
    pub(crate) fn read_base(&self, of: &BlobId, base: &BlobId) -> Result<Vec<u8>> {
        let what = || format!("data blob {}", of.to_hex());
        if self.lookup(base)?.is_none() {
            return Err(Error::corrupt(
                what(),
                format!("its delta base {} is not in the index", base.to_hex()),
            ));
        }
        let loc = self.locate_as(BlobType::Data, base)?;
        let handle = Handle::new(FileType::Pack, loc.pack.to_hex())?;
        let sealed =
            self.backend
                .read_range(&handle, u64::from(loc.offset), u64::from(loc.length))?;
        match open_body(&self.keys, BlobType::Data, base, &sealed, loc.raw_length) {
            Ok(Body::Whole(plain)) => Ok(plain),
            Ok(Body::Delta { .. }) => Err(Error::corrupt(
                what(),
                format!("its delta base {} is itself a delta", base.to_hex()),
            )),
            Err(e) => Err(Error::corrupt(
                what(),
                format!("its delta base cannot be read: {e}"),
            )),
        }
    }

    /// Reads, opens and verifies several blobs, in order. Blobs lying next to
    /// each other in a pack (as consecutive chunks of a stream usually do)
    /// are fetched with one ranged read; the bases of delta blobs are fetched
    /// in the same pass; reads and opening run in parallel.
    pub fn read_blobs(&self, kind: BlobType, ids: &[BlobId]) -> Result<Vec<Vec<u8>>> {
        let mut wanted: Vec<(BlobType, BlobId, Location)> = ids
            .iter()
            .map(|id| Ok((kind, *id, self.locate_as(kind, id)?)))
            .collect::<Result<_>>()?;
        let requested: HashSet<BlobId> = ids.iter().copied().collect();
        let mut extra: Vec<BlobId> = wanted
            .iter()
            .filter_map(|(_, _, l)| l.base)
            .filter(|b| !requested.contains(b))
            .collect();
        extra.sort_unstable();
        extra.dedup();
        for b in extra {
            // A missing base is reported with the delta that needs it, below.
            if let Some(loc) = self.lookup(&b)? {
                wanted.push((BlobType::Data, b, loc));
            }
        }
        let bodies = self.fetch_bodies(&wanted)?;
        let wholes: HashMap<BlobId, &[u8]> = bodies
            .iter()
            .zip(&wanted)
            .filter_map(|(b, (_, id, _))| match b {
                Body::Whole(p) => Some((*id, &p[..])),
                Body::Delta { .. } => None,
            })
            .collect();
        bodies[..ids.len()]
            .par_iter()
            .zip(&wanted[..ids.len()])
            .map(|(body, (kind, id, loc))| match body {
                Body::Whole(plain) => Ok(plain.clone()),
                Body::Delta { base, frame } => {
                    check_base(id, loc, base)?;
                    let owned;
                    let base_plain = match wholes.get(base) {
                        Some(p) => *p,
                        None => {
                            owned = self.read_base(id, base)?;
                            &owned[..]
                        }
                    };
                    apply_delta(&self.keys, *kind, id, base_plain, frame, loc.raw_length)
                }
            })
            .collect()
    }

    /// Fetches and opens blobs at known locations, merging reads of blobs
    /// that lie close together in one pack.
    fn fetch_bodies(&self, wanted: &[(BlobType, BlobId, Location)]) -> Result<Vec<Body>> {
        /// Bytes of unneeded data a merged read may span between two blobs.
        const MAX_GAP: u64 = 64 * 1024;
        let locs: Vec<&Location> = wanted.iter().map(|(_, _, l)| l).collect();
        let mut order: Vec<usize> = (0..wanted.len()).collect();
        order.sort_by_key(|&i| (locs[i].pack, locs[i].offset));
        // Runs of blobs (indices into `wanted`) read with one request.
        let mut runs: Vec<Vec<usize>> = Vec::new();
        for i in order {
            let merge = runs.last().and_then(|r| r.last()).is_some_and(|&p| {
                let (a, b) = (locs[p], locs[i]);
                let end = u64::from(a.offset) + u64::from(a.length);
                a.pack == b.pack
                    && u64::from(b.offset) >= end
                    && u64::from(b.offset) - end <= MAX_GAP
            });
            match runs.last_mut() {
                Some(r) if merge => r.push(i),
                _ => runs.push(vec![i]),
            }
        }
        let opened: Vec<Vec<(usize, Body)>> = runs
            .par_iter()
            .map(|run| {
                let first = locs[run[0]];
                let last = locs[*run.last().expect("non-empty run")];
                let start = u64::from(first.offset);
                let end = u64::from(last.offset) + u64::from(last.length);
                let handle = Handle::new(FileType::Pack, first.pack.to_hex())?;
                let bytes = self.backend.read_range(&handle, start, end - start)?;
                run.par_iter()
                    .map(|&i| {
                        let (kind, id, l) = &wanted[i];
                        let off = (u64::from(l.offset) - start) as usize;
                        let sealed = &bytes[off..off + l.length as usize];
                        open_body(&self.keys, *kind, id, sealed, l.raw_length).map(|p| (i, p))
                    })
                    .collect()
            })
            .collect::<Result<_>>()?;
        let mut out: Vec<Option<Body>> = (0..wanted.len()).map(|_| None).collect();
        for (i, body) in opened.into_iter().flatten() {
            out[i] = Some(body);
        }
        Ok(out
            .into_iter()
            .map(|b| b.expect("every blob opened"))
            .collect())
    }

    /// Reads a tree blob.
    pub fn load_tree(&self, id: &BlobId) -> Result<Tree> {
        Tree::decode(id, &self.read_blob(BlobType::Tree, id)?)
    }

    /// Expands a node's content to chunk ids, one list blob at a time.
    pub fn for_each_chunk_list(
        &self,
        content: &[BlobId],
        depth: u8,
        f: &mut dyn FnMut(&[BlobId]) -> Result<()>,
    ) -> Result<()> {
        if depth == 0 {
            return f(content);
        }
        for list in content {
            let ids = decode_list(list, &self.read_blob(BlobType::List, list)?)?;
            self.for_each_chunk_list(&ids, depth - 1, f)?;
        }
        Ok(())
    }
}

/// Decodes JSON after checking its `version` field, so a newer format is
/// reported as such rather than as damage.
fn decode_versioned<T: serde::de::DeserializeOwned>(
    what: &str,
    plain: &[u8],
    supported: u32,
) -> Result<T> {
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let v: Version =
        serde_json::from_slice(plain).map_err(|e| Error::corrupt(what, e.to_string()))?;
    if v.version != supported {
        return Err(Error::UnsupportedVersion {
            what: what.to_owned(),
            found: v.version,
            supported,
        });
    }
    serde_json::from_slice(plain).map_err(|e| Error::corrupt(what, e.to_string()))
}

/// A delta blob's own record of its base must match the index's.
fn check_base(id: &BlobId, loc: &Location, base: &BlobId) -> Result<()> {
    if loc.base != Some(*base) {
        return Err(Error::corrupt(
            format!("data blob {}", id.to_hex()),
            format!(
                "is a delta against {} but the index records {}",
                base.to_hex(),
                loc.base
                    .map_or_else(|| "no base".to_owned(), |b| b.to_hex())
            ),
        ));
    }
    Ok(())
}

pub(crate) fn put_content_addressed(
    backend: &dyn Backend,
    kind: FileType,
    bytes: Bytes,
) -> Result<[u8; 32]> {
    let id = object_hash(&bytes);
    match backend.create(&Handle::new(kind, hex::encode(id))?, bytes) {
        Ok(()) => Ok(id),
        Err(e) if e.kind() == StoreErrorKind::AlreadyExists => Ok(id),
        Err(e) => Err(e.into()),
    }
}
