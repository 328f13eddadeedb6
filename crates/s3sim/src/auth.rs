//! Who is calling: the principals s3sim knows (the `--access-key` pair, and
//! those of a `--credentials` file), each request's SigV4 signature checked
//! against the secret of its own access key, and the [`Requester`] every
//! request carries to the operations (and every entry it writes keeps).
//!
//! A principal is what IAM would call one: an account's root user, an IAM
//! user, a role, or a role's session (`arn:aws:sts::ACCOUNT:assumed-role/
//! ROLE/SESSION`), with the IAM actions its identity-based policies allow
//! (`s3:GetObject`, `s3:Get*`, `s3:*`, `*`). What a request needs of them is
//! in [`crate::access`].

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use md5::{Digest, Md5};
use s3s::auth::{S3Auth, SecretKey};
use s3s::{s3_error, S3Result};
use serde::Deserialize;

use crate::Sim;

/// The account the `--access-key` pair is the root user of (the example
/// account id of AWS's documentation, as moto uses it).
pub const DEFAULT_ACCOUNT: &str = "123456789012";

/// Someone who can sign requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub access_key: String,
    /// 12 digits.
    pub account_id: String,
    /// `arn:aws:iam::ACCOUNT:root`, `…:user/NAME`, `…:role/NAME`, or
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub arn: String,
    /// The account's canonical user id (64 hex digits), as server access
    /// logs name a requester.
    pub canonical_id: String,
    allowed: Allowed,
}

/// The IAM actions a principal's identity-based policies allow.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    /// Everything: decided without looking at the action.
    Everything,
    /// Action patterns, lower-cased (IAM compares actions without case).
    Actions(Vec<String>),
}

impl Principal {
    /// The root user of `account_id`, allowed every action.
    pub fn root(access_key: &str, account_id: &str) -> Principal {
        Principal {
            access_key: access_key.to_owned(),
            account_id: account_id.to_owned(),
            arn: format!("arn:aws:iam::{account_id}:root"),
            canonical_id: canonical_id(account_id),
            allowed: Allowed::Everything,
        }
    }

    /// Whether its identity-based policies allow `action` (`s3:GetObject`).
    pub fn allows(&self, action: &str) -> bool {
        match &self.allowed {
            Allowed::Everything => true,
            Allowed::Actions(patterns) => {
                let action = action.to_ascii_lowercase();
                patterns
                    .iter()
                    .any(|p| wildcard(p.as_bytes(), action.as_bytes()))
            }
        }
    }

    pub fn allows_everything(&self) -> bool {
        self.allowed == Allowed::Everything
    }

    /// An account's root user: the bucket policy never locks it out of the
    /// bucket policy operations.
    pub fn is_root(&self) -> bool {
        self.arn.ends_with(":root")
    }

    /// The role an assumed-role session is of (`arn:aws:iam::A:role/R`):
    /// a policy naming the role names every session of it.
    pub fn role_of_session(&self) -> Option<String> {
        let rest = self.arn.strip_prefix("arn:aws:sts::")?;
        let (account, rest) = rest.split_once(":assumed-role/")?;
        let (role, _session) = rest.split_once('/')?;
        Some(format!("arn:aws:iam::{account}:role/{role}"))
    }
}

/// A principal and the secret it signs with.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub principal: Arc<Principal>,
    secret: SecretKey,
}

impl KeyPair {
    pub fn new(principal: Principal, secret: &str) -> KeyPair {
        KeyPair {
            principal: Arc::new(principal),
            secret: SecretKey::from(secret),
        }
    }
}

/// Who made a request: the principal that signed it and the client's
/// address. Every version and delete marker a request makes keeps it
/// ([`crate::store::Entry::writer`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Requester {
    pub principal: Arc<Principal>,
    /// `None` when the request did not come through [`crate::serve`].
    pub address: Option<IpAddr>,
}

/// The client's address, put on each request by the server for
/// [`Requester::address`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub IpAddr);

/// Every key pair the server accepts, by access key.
#[derive(Debug, Default)]
pub struct Keys(HashMap<String, KeyPair>);

impl Keys {
    /// The `--access-key` pair (the root user of [`DEFAULT_ACCOUNT`]) and
    /// `more`.
    ///
    /// # Panics
    ///
    /// When two pairs share an access key (`--credentials` files are
    /// checked for that before: [`CredentialsFile::check_against`]).
    pub fn new(access_key: &str, secret_key: &str, more: &[KeyPair]) -> Keys {
        let mut keys = HashMap::new();
        let root = KeyPair::new(Principal::root(access_key, DEFAULT_ACCOUNT), secret_key);
        for pair in std::iter::once(root).chain(more.iter().cloned()) {
            let key = pair.principal.access_key.clone();
            assert!(
                keys.insert(key.clone(), pair).is_none(),
                "two principals share the access key {key}"
            );
        }
        Keys(keys)
    }

    pub fn get(&self, access_key: &str) -> Option<&KeyPair> {
        self.0.get(access_key)
    }
}

#[async_trait::async_trait]
impl S3Auth for Sim {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        // S3's answer to a key it does not know (403).
        self.keys
            .get(access_key)
            .map(|k| k.secret.clone())
            .ok_or_else(|| {
                s3_error!(
                    InvalidAccessKeyId,
                    "The AWS Access Key Id you provided does not exist in our records."
                )
            })
    }
}

/// The principals of a `--credentials` file.
#[derive(Debug, Clone, Default)]
pub struct CredentialsFile(pub Vec<KeyPair>);

/// Why a `--credentials` file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a JSON list of {{\"access_key\", \"secret_key\", \"account_id\", \"arn\", \
         \"canonical_id\" (optional), \"allow\": [actions]}}: {source}"
    )]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}, principal {index} ({access_key}): {problem}")]
    Invalid {
        path: String,
        index: usize,
        access_key: String,
        problem: String,
    },
}

/// One principal as a credentials file gives it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    access_key: String,
    secret_key: String,
    account_id: String,
    arn: String,
    #[serde(default)]
    canonical_id: Option<String>,
    allow: Vec<String>,
}

impl CredentialsFile {
    /// Reads and checks a credentials file (clap's value parser for
    /// `--credentials`).
    pub fn read(path: &str) -> Result<CredentialsFile, CredentialsError> {
        let text = std::fs::read(Path::new(path)).map_err(|source| CredentialsError::Read {
            path: path.to_owned(),
            source,
        })?;
        let entries: Vec<FileEntry> =
            serde_json::from_slice(&text).map_err(|source| CredentialsError::Parse {
                path: path.to_owned(),
                source,
            })?;
        let mut seen = std::collections::HashSet::new();
        let mut pairs = Vec::with_capacity(entries.len());
        for (index, e) in entries.into_iter().enumerate() {
            let invalid = |problem: String| CredentialsError::Invalid {
                path: path.to_owned(),
                index,
                access_key: e.access_key.clone(),
                problem,
            };
            if e.access_key.is_empty() || e.secret_key.is_empty() {
                return Err(invalid(
                    "access_key and secret_key must not be empty".into(),
                ));
            }
            if !seen.insert(e.access_key.clone()) {
                return Err(invalid(
                    "this access_key is already taken by an earlier principal".into(),
                ));
            }
            if e.account_id.len() != 12 || !e.account_id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(format!(
                    "account_id {:?} is not 12 digits",
                    e.account_id
                )));
            }
            check_arn(&e.arn, &e.account_id).map_err(invalid)?;
            let canonical = match e.canonical_id {
                Some(c) if c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    c.to_ascii_lowercase()
                }
                Some(c) => {
                    return Err(invalid(format!(
                        "canonical_id {c:?} is not 64 hexadecimal digits"
                    )))
                }
                None => canonical_id(&e.account_id),
            };
            let mut actions = Vec::with_capacity(e.allow.len());
            for a in &e.allow {
                let valid_name = a.strip_prefix("s3:").is_some_and(|n| {
                    !n.is_empty()
                        && n.bytes()
                            .all(|b| b.is_ascii_alphabetic() || b == b'*' || b == b'?')
                });
                if a != "*" && !valid_name {
                    return Err(invalid(format!(
                        "allow entry {a:?} is not an S3 action (s3:GetObject, s3:Get*, s3:*) or \"*\""
                    )));
                }
                actions.push(a.to_ascii_lowercase());
            }
            let principal = Principal {
                access_key: e.access_key,
                account_id: e.account_id,
                arn: e.arn,
                canonical_id: canonical,
                allowed: Allowed::Actions(actions),
            };
            pairs.push(KeyPair::new(principal, &e.secret_key));
        }
        Ok(CredentialsFile(pairs))
    }

    /// Refuses a file that reuses the `--access-key` of the command line.
    pub fn check_against(&self, access_key: &str) -> Result<(), String> {
        match self.0.iter().find(|k| k.principal.access_key == access_key) {
            Some(_) => Err(format!(
                "--credentials gives the access key {access_key} of --access-key again: \
                 give that principal another access key"
            )),
            None => Ok(()),
        }
    }
}

/// Checks a principal ARN names a principal of `account`.
fn check_arn(arn: &str, account: &str) -> Result<(), String> {
    let shapes = "arn:aws:iam::ACCOUNT:root, arn:aws:iam::ACCOUNT:user/NAME, \
                  arn:aws:iam::ACCOUNT:role/NAME or arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION";
    let (service, rest) = if let Some(rest) = arn.strip_prefix("arn:aws:iam::") {
        ("iam", rest)
    } else if let Some(rest) = arn.strip_prefix("arn:aws:sts::") {
        ("sts", rest)
    } else {
        return Err(format!("arn {arn:?} is not one of {shapes}"));
    };
    let Some((in_arn, resource)) = rest.split_once(':') else {
        return Err(format!("arn {arn:?} is not one of {shapes}"));
    };
    if in_arn != account {
        return Err(format!(
            "arn {arn:?} is of account {in_arn}, not of its account_id {account}"
        ));
    }
    let named = |prefix: &str, parts: usize| {
        resource.strip_prefix(prefix).is_some_and(|r| {
            let p: Vec<&str> = r.split('/').collect();
            p.len() >= parts && p.iter().all(|s| !s.is_empty())
        })
    };
    let fits = match service {
        "iam" => resource == "root" || named("user/", 1) || named("role/", 1),
        _ => resource
            .strip_prefix("assumed-role/")
            .is_some_and(|r| r.split('/').count() == 2 && r.split('/').all(|s| !s.is_empty())),
    };
    if fits {
        Ok(())
    } else {
        Err(format!("arn {arn:?} is not one of {shapes}"))
    }
}

/// An account's canonical user id: 64 hex digits derived from the account
/// id, stable across runs.
fn canonical_id(account: &str) -> String {
    let a = Md5::digest(format!("s3sim canonical id {account}").as_bytes());
    let b = Md5::digest(a);
    format!("{}{}", hex::encode(a), hex::encode(b))
}

/// IAM's wildcards: `*` any run of characters, `?` any one.
pub(crate) fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard(b"s3:*", b"s3:getobject"));
        assert!(wildcard(b"s3:get*", b"s3:getobjectversion"));
        assert!(!wildcard(b"s3:get*", b"s3:putobject"));
        assert!(wildcard(b"arn:aws:s3:::b/p/*", b"arn:aws:s3:::b/p/k"));
        assert!(!wildcard(b"arn:aws:s3:::b/p/*", b"arn:aws:s3:::b/q/k"));
        assert!(wildcard(b"s3:?etobject", b"s3:getobject"));
        assert!(wildcard(b"*", b""));
        assert!(!wildcard(b"a", b""));
    }

    #[test]
    fn allowed_actions_ignore_case_and_sessions_know_their_role() {
        let p = Principal {
            access_key: "k".into(),
            account_id: "111122223333".into(),
            arn: "arn:aws:sts::111122223333:assumed-role/Restorer/job-7".into(),
            canonical_id: canonical_id("111122223333"),
            allowed: Allowed::Actions(vec!["s3:get*".into()]),
        };
        assert!(p.allows("s3:GetObject"));
        assert!(!p.allows("s3:PutObject"));
        assert_eq!(
            p.role_of_session().as_deref(),
            Some("arn:aws:iam::111122223333:role/Restorer")
        );
        assert!(Principal::root("k", DEFAULT_ACCOUNT).allows("s3:Anything"));
    }

    #[test]
    fn credentials_files_are_checked() {
        let dir = std::env::temp_dir().join(format!("s3sim-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p.to_string_lossy().into_owned()
        };
        let good = write(
            "good.json",
            r#"[{"access_key":"a","secret_key":"s","account_id":"111122223333",
                 "arn":"arn:aws:iam::111122223333:user/alice","allow":["s3:GetObject"]}]"#,
        );
        let file = CredentialsFile::read(&good).unwrap();
        assert_eq!(file.0[0].principal.canonical_id.len(), 64);
        assert!(file.check_against("a").is_err());
        let other_account = write(
            "account.json",
            r#"[{"access_key":"a","secret_key":"s","account_id":"111122223333",
                 "arn":"arn:aws:iam::999999999999:user/alice","allow":[]}]"#,
        );
        let e = CredentialsFile::read(&other_account)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not of its account_id"), "{e}");
        let bad_action = write(
            "action.json",
            r#"[{"access_key":"a","secret_key":"s","account_id":"111122223333",
                 "arn":"arn:aws:iam::111122223333:role/r","allow":["GetObject"]}]"#,
        );
        let e = CredentialsFile::read(&bad_action).unwrap_err().to_string();
        assert!(e.contains("is not an S3 action"), "{e}");
        let unknown_field = write("field.json", r#"[{"access_key":"a","secrets":"s"}]"#);
        assert!(matches!(
            CredentialsFile::read(&unknown_field),
            Err(CredentialsError::Parse { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
