//! Bucket policies: PutBucketPolicy stores the document as given and
//! GetBucketPolicy gives it back, byte for byte. s3sim is not a policy
//! evaluator: of a document it enforces only the statements of two
//! documented patterns, and keeps every other statement without effect.
//!
//! - "Enforce conditional writes on Amazon S3 buckets" (S3 user guide):
//!   statements on `s3:PutObject` whose `Condition` is `Null` of
//!   `s3:if-none-match` / `s3:if-match` (requests without the header, or
//!   with it), possibly with `Bool` of `s3:ObjectCreationOperation`, which
//!   is true for PutObject, CopyObject and CompleteMultipartUpload and false
//!   for CreateMultipartUpload, UploadPart and UploadPartCopy (the page's
//!   way to exempt the parts of a multipart upload, which take no
//!   conditional headers). The page's examples are `Allow` statements
//!   (Alice may write only with the header) and a `Deny` one (writes
//!   without the header are refused).
//! - "Enforce conditional deletes on Amazon S3 buckets" (S3 user guide):
//!   statements on `s3:DeleteObject` with `Null` of `s3:if-match`.
//!
//! So a statement counts when its parts are `Effect`, `Principal` (`*`, or
//! `AWS` account ids and principal ARNs), `Action` and `Resource` (with IAM
//! wildcards), and a `Condition` made only of those keys; an `Allow` may
//! also have no condition (the pages' companion grants, e.g. `s3:GetObject`
//! for a conditional delete); a `Deny` must test `s3:if-match` or
//! `s3:if-none-match`. Statements with `NotPrincipal`, `NotAction`,
//! `NotResource`, other condition keys or operators, or an unconditional
//! `Deny` are stored and have no effect.
//!
//! The counted statements are judged as IAM judges them within one account
//! ("Policy evaluation logic", IAM user guide): an explicit `Deny` refuses,
//! else an `Allow` of the bucket policy or of the principal's own
//! (identity-based) allowed actions grants. An `Allow` naming only an
//! account grants nothing by itself: the account's principals still need
//! their own permissions.

use serde_json::Value;

use crate::auth::{wildcard, Principal};

/// A bucket's policy: the document, and the statements s3sim enforces.
#[derive(Debug)]
pub struct BucketPolicy {
    /// Exactly as PutBucketPolicy received it.
    pub document: String,
    statements: Vec<Statement>,
}

/// What a statement does when it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One request, as a statement sees it.
#[derive(Debug)]
pub struct Ask<'a> {
    pub principal: &'a Principal,
    /// `s3:PutObject`.
    pub action: &'a str,
    /// `arn:aws:s3:::bucket/key` or `arn:aws:s3:::bucket`.
    pub resource: &'a str,
    pub keys: ConditionKeys,
}

/// The condition keys of the documented patterns that a request has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConditionKeys {
    /// `s3:if-match`: the request carries `If-Match` (or, in DeleteObjects,
    /// an `ETag` for the key).
    pub if_match: bool,
    /// `s3:if-none-match`: the request carries `If-None-Match`.
    pub if_none_match: bool,
    /// `s3:ObjectCreationOperation`, for the requests of `s3:PutObject`.
    pub object_creation: Option<bool>,
}

#[derive(Debug)]
struct Statement {
    effect: Effect,
    who: Vec<Who>,
    /// Lower-cased patterns.
    actions: Vec<String>,
    resources: Vec<String>,
    conditions: Vec<Condition>,
}

#[derive(Debug)]
enum Who {
    Anyone,
    /// Every principal of an account: refused by a `Deny`, granted nothing
    /// by an `Allow`.
    Account(String),
    /// One principal (a role's ARN also names its sessions).
    Arn(String),
}

#[derive(Debug)]
enum Condition {
    /// `Null`: holds when the key's absence is one of these.
    Null { key: Key, absent: Vec<bool> },
    /// `Bool` of `s3:ObjectCreationOperation`.
    ObjectCreation(Vec<bool>),
}

#[derive(Debug, Clone, Copy)]
enum Key {
    IfMatch,
    IfNoneMatch,
}

/// A document PutBucketPolicy refuses (400 MalformedPolicy), with why.
pub type Malformed = String;

impl BucketPolicy {
    /// Reads a policy document; refuses one that is not a policy.
    pub fn parse(document: &str) -> Result<BucketPolicy, Malformed> {
        let value: Value = serde_json::from_str(document)
            .map_err(|_| "Policies must be valid JSON and the first byte must be '{'".to_owned())?;
        let Some(root) = value.as_object() else {
            return Err("Policies must be valid JSON and the first byte must be '{'".into());
        };
        let statements = match root.get("Statement") {
            Some(Value::Array(list)) if !list.is_empty() => list.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => return Err("Missing required field Statement".into()),
        };
        let mut counted = Vec::new();
        for s in statements {
            if let Some(s) = statement(s)? {
                counted.push(s);
            }
        }
        Ok(BucketPolicy {
            document: document.to_owned(),
            statements: counted,
        })
    }

    /// What the counted statements say of a request: `Deny` if one refuses
    /// it, else `Allow` if one grants it, else nothing (the principal's own
    /// permissions decide).
    pub fn decide(&self, ask: &Ask) -> Option<Effect> {
        let mut allowed = false;
        for s in self.statements.iter().filter(|s| s.applies(ask)) {
            match s.effect {
                Effect::Deny => return Some(Effect::Deny),
                Effect::Allow => allowed = true,
            }
        }
        allowed.then_some(Effect::Allow)
    }
}

impl Statement {
    fn applies(&self, ask: &Ask) -> bool {
        let action = ask.action.to_ascii_lowercase();
        self.who.iter().any(|w| w.names(ask.principal, self.effect))
            && self
                .actions
                .iter()
                .any(|a| wildcard(a.as_bytes(), action.as_bytes()))
            && self
                .resources
                .iter()
                .any(|r| wildcard(r.as_bytes(), ask.resource.as_bytes()))
            && self.conditions.iter().all(|c| c.holds(ask.keys))
    }
}

impl Who {
    fn names(&self, p: &Principal, effect: Effect) -> bool {
        match self {
            Who::Anyone => true,
            Who::Account(a) => effect == Effect::Deny && *a == p.account_id,
            Who::Arn(arn) => *arn == p.arn || p.role_of_session().as_ref() == Some(arn),
        }
    }
}

impl Condition {
    fn holds(&self, keys: ConditionKeys) -> bool {
        match self {
            Condition::Null { key, absent } => {
                let present = match key {
                    Key::IfMatch => keys.if_match,
                    Key::IfNoneMatch => keys.if_none_match,
                };
                absent.contains(&!present)
            }
            // A key the request does not have matches no `Bool`.
            Condition::ObjectCreation(values) => {
                keys.object_creation.is_some_and(|v| values.contains(&v))
            }
        }
    }
}

/// A statement s3sim enforces, `None` for one it keeps without effect, or
/// why the document is malformed.
fn statement(s: &Value) -> Result<Option<Statement>, Malformed> {
    let Some(s) = s.as_object() else {
        return Err("Statement must be an object or a list of objects".into());
    };
    let effect = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err("Missing required field Effect (Allow or Deny)".into()),
    };
    if !s.contains_key("Principal") && !s.contains_key("NotPrincipal") {
        return Err("Missing required field Principal".into());
    }
    if !s.contains_key("Action") && !s.contains_key("NotAction") {
        return Err("Missing required field Action".into());
    }
    if !s.contains_key("Resource") && !s.contains_key("NotResource") {
        return Err("Missing required field Resource".into());
    }
    let (Some(principal), Some(actions), Some(resources)) =
        (s.get("Principal"), s.get("Action"), s.get("Resource"))
    else {
        return Ok(None);
    };
    if ["NotPrincipal", "NotAction", "NotResource"]
        .iter()
        .any(|k| s.contains_key(*k))
    {
        return Ok(None);
    }
    let who = principals(principal)?;
    let actions = strings(actions).ok_or("Policy has invalid action")?;
    let resources = strings(resources).ok_or("Policy has invalid resource")?;
    if resources.iter().any(|r| !r.starts_with("arn:aws:s3:::")) {
        return Err("Policy has invalid resource".into());
    }
    let conditions = match s.get("Condition") {
        None => Vec::new(),
        Some(c) => match conditions(c)? {
            Some(c) => c,
            None => return Ok(None),
        },
    };
    let tests_header = conditions
        .iter()
        .any(|c| matches!(c, Condition::Null { .. }));
    if effect == Effect::Deny && !tests_header {
        return Ok(None);
    }
    Ok(Some(Statement {
        effect,
        who,
        actions: actions.iter().map(|a| a.to_ascii_lowercase()).collect(),
        resources,
        conditions,
    }))
}

fn principals(v: &Value) -> Result<Vec<Who>, Malformed> {
    let invalid = || "Invalid principal in policy".to_owned();
    match v {
        Value::String(s) if s == "*" => Ok(vec![Who::Anyone]),
        Value::Object(kinds) => {
            let mut who = Vec::new();
            for (kind, ids) in kinds {
                let ids = strings(ids).ok_or_else(invalid)?;
                // Services, federated users and canonical ids name none of
                // s3sim's principals.
                if kind != "AWS" {
                    continue;
                }
                for id in ids {
                    who.push(aws_principal(&id).ok_or_else(invalid)?);
                }
            }
            Ok(who)
        }
        _ => Err(invalid()),
    }
}

/// `*`, an account id, or an IAM / STS ARN.
fn aws_principal(id: &str) -> Option<Who> {
    if id == "*" {
        return Some(Who::Anyone);
    }
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Who::Account(id.to_owned()));
    }
    let rest = id
        .strip_prefix("arn:aws:iam::")
        .or_else(|| id.strip_prefix("arn:aws:sts::"))?;
    let (account, resource) = rest.split_once(':')?;
    if resource == "root" {
        return Some(Who::Account(account.to_owned()));
    }
    Some(Who::Arn(id.to_owned()))
}

/// The condition block, if every test in it is one of the documented
/// patterns' (`None` if not).
fn conditions(v: &Value) -> Result<Option<Vec<Condition>>, Malformed> {
    let Some(ops) = v.as_object() else {
        return Err("Condition must be an object".into());
    };
    let mut out = Vec::new();
    for (op, tests) in ops {
        let Some(tests) = tests.as_object() else {
            return Err(format!("Condition {op} must be an object"));
        };
        for (key, values) in tests {
            let Some(values) = booleans(values) else {
                return Ok(None);
            };
            let condition = match (op.as_str(), key.to_ascii_lowercase().as_str()) {
                ("Null", "s3:if-match") => Condition::Null {
                    key: Key::IfMatch,
                    absent: values,
                },
                ("Null", "s3:if-none-match") => Condition::Null {
                    key: Key::IfNoneMatch,
                    absent: values,
                },
                ("Bool", "s3:objectcreationoperation") => Condition::ObjectCreation(values),
                _ => return Ok(None),
            };
            out.push(condition);
        }
    }
    Ok(Some(out))
}

/// A string or a list of strings.
fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(list) => list.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

/// `"true"`, `true`, or a list of them.
fn booleans(v: &Value) -> Option<Vec<bool>> {
    let one = |v: &Value| match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    };
    match v {
        Value::Array(list) => list.iter().map(one).collect(),
        v => one(v).map(|b| vec![b]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Principal {
        Principal::root("k", "111122223333")
    }

    fn ask<'a>(p: &'a Principal, action: &'a str, keys: ConditionKeys) -> Ask<'a> {
        Ask {
            principal: p,
            action,
            resource: "arn:aws:s3:::b/k",
            keys,
        }
    }

    #[test]
    fn the_documented_deny_refuses_writes_without_the_header() {
        // "Enforce conditional writes", example 2.
        let policy = BucketPolicy::parse(
            r#"{"Version":"2012-10-17","Statement":[
              {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},
               "Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*"},
              {"Effect":"Deny","Principal":"*","Action":"s3:PutObject",
               "Resource":"arn:aws:s3:::b/*",
               "Condition":{"Null":{"s3:if-match":"true"},
                            "Bool":{"s3:ObjectCreationOperation":"true"}}}]}"#,
        )
        .unwrap();
        let p = alice();
        let put = |if_match, creation| {
            policy.decide(&ask(
                &p,
                "s3:PutObject",
                ConditionKeys {
                    if_match,
                    if_none_match: false,
                    object_creation: Some(creation),
                },
            ))
        };
        assert_eq!(put(false, true), Some(Effect::Deny));
        assert_eq!(put(true, true), None);
        // UploadPart: not an object creation operation.
        assert_eq!(put(false, false), None);
    }

    #[test]
    fn statements_outside_the_patterns_have_no_effect() {
        let policy = BucketPolicy::parse(
            r#"{"Statement":[
              {"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b/*"},
              {"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::b/*",
               "Condition":{"StringEquals":{"aws:SourceIp":"10.0.0.1"}}},
              {"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/x"},
               "Action":"s3:DeleteObject","Resource":"arn:aws:s3:::b/*",
               "Condition":{"Null":{"s3:if-match":"true"}}}]}"#,
        )
        .unwrap();
        assert!(policy.statements.is_empty());
        let p = alice();
        assert_eq!(
            policy.decide(&ask(&p, "s3:DeleteObject", ConditionKeys::default())),
            None
        );
        assert!(BucketPolicy::parse("not json").is_err());
        assert!(BucketPolicy::parse(r#"{"Statement":[{"Effect":"Maybe"}]}"#).is_err());
    }

    #[test]
    fn a_role_names_its_sessions_and_an_account_grants_nothing() {
        let policy = BucketPolicy::parse(
            r#"{"Statement":[
              {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:role/R","222233334444"]},
               "Action":"s3:DeleteObject","Resource":"arn:aws:s3:::b/*",
               "Condition":{"Null":{"s3:if-match":"false"}}}]}"#,
        )
        .unwrap();
        let mut p = Principal::root("k", "111122223333");
        p.arn = "arn:aws:sts::111122223333:assumed-role/R/s1".into();
        let with = ConditionKeys {
            if_match: true,
            ..ConditionKeys::default()
        };
        assert_eq!(
            policy.decide(&ask(&p, "s3:DeleteObject", with)),
            Some(Effect::Allow)
        );
        assert_eq!(
            policy.decide(&ask(&p, "s3:DeleteObject", ConditionKeys::default())),
            None
        );
        let other = Principal::root("k2", "222233334444");
        assert_eq!(policy.decide(&ask(&other, "s3:DeleteObject", with)), None);
    }
}
