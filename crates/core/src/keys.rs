//! Key management: several passwords open one repository.
//!
//! Every key object seals the same master key under its own password
//! (argon2id, FORMAT §3.2), so adding a key, removing one, or changing a
//! password never touches data: people can be given access and have it taken
//! away without re-encrypting anything. Key objects are content-addressed and
//! never rewritten; changing a password adds a key, then removes the old one.
//! The key in use and the last key cannot be removed.

use bytes::Bytes;
use serde::Serialize;
use vault_store::{FileType, Handle};

use crate::crypto::KdfParams;
use crate::error::{Error, Result};
use crate::id::KeyId;
use crate::repository::{put_content_addressed, KeyFile, Repository};

/// What `key list` shows of one key object.
#[derive(Clone, Debug, Serialize)]
pub struct KeyInfo {
    /// The key object's id.
    pub id: KeyId,
    /// When it was added.
    pub created: String,
    /// Host that added it.
    pub hostname: String,
    /// User that added it.
    pub username: String,
    /// argon2id cost.
    pub kdf_params: Option<KdfParams>,
    /// True for the key this handle was opened with.
    pub current: bool,
    /// Why the key object cannot be read, if it cannot.
    pub damaged: Option<String>,
}

/// Who adds a key, recorded in it.
#[derive(Clone, Debug, Default)]
pub struct NewKey {
    /// Host name.
    pub hostname: String,
    /// User name.
    pub username: String,
    /// Time (RFC 3339).
    pub time: String,
    /// argon2id cost (default: the interactive default).
    pub kdf: KdfParams,
}

impl Repository {
    /// Every key object, readable or not.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut out = Vec::new();
        for (name, _) in self.backend().list(FileType::Key)? {
            let Some(id) = KeyId::from_hex(&name) else {
                continue;
            };
            let bytes = self
                .backend()
                .read(&Handle::new(FileType::Key, name.clone())?)?;
            let decoded = KeyFile::decode(&name, &bytes);
            let current = id == self.key_id();
            out.push(match decoded {
                Ok(k) => KeyInfo {
                    id,
                    created: k.created,
                    hostname: k.hostname,
                    username: k.username,
                    kdf_params: Some(k.kdf_params),
                    current,
                    damaged: None,
                },
                Err(e) => KeyInfo {
                    id,
                    created: String::new(),
                    hostname: String::new(),
                    username: String::new(),
                    kdf_params: None,
                    current,
                    damaged: Some(e.to_string()),
                },
            });
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Adds a key object opening this repository with `password`.
    pub fn add_key(&self, password: &[u8], who: &NewKey) -> Result<KeyId> {
        if password.is_empty() {
            return Err(Error::Invalid("the new password is empty".into()));
        }
        let key = KeyFile::new(
            self.master_key(),
            password,
            who.kdf,
            &who.hostname,
            &who.username,
            &who.time,
        )?;
        let bytes = serde_json::to_vec_pretty(&key).expect("key serializes");
        let id = put_content_addressed(&**self.backend(), FileType::Key, Bytes::from(bytes))?;
        Ok(KeyId(id))
    }

    /// Removes a key object. Refuses the key this handle was opened with and
    /// the last readable key (the repository would be lost).
    pub fn remove_key(&self, id: &KeyId) -> Result<()> {
        let keys = self.list_keys()?;
        let Some(target) = keys.iter().find(|k| k.id == *id) else {
            return Err(Error::Invalid(format!("there is no key {id}")));
        };
        let readable = keys.iter().filter(|k| k.damaged.is_none()).count();
        if target.damaged.is_none() && readable <= 1 {
            return Err(Error::Invalid(format!(
                "key {id} is the last key: without it the repository cannot be opened; change its password with `vault key passwd`"
            )));
        }
        if *id == self.key_id() {
            return Err(Error::Invalid(format!(
                "key {id} is the one in use: open the repository with another key to remove it, or use `vault key passwd`"
            )));
        }
        self.backend()
            .delete(&Handle::new(FileType::Key, id.to_hex())?)?;
        Ok(())
    }

    /// Changes the password of the key in use: adds a key with the new
    /// password, then removes the old one. Returns the new key's id (this
    /// handle keeps working; it does not need its key object again).
    pub fn change_password(&self, password: &[u8], who: &NewKey) -> Result<KeyId> {
        let new = self.add_key(password, who)?;
        if new != self.key_id() {
            self.backend()
                .delete(&Handle::new(FileType::Key, self.key_id().to_hex())?)?;
        }
        Ok(new)
    }
}
