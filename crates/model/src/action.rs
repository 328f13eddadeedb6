/// The four things a plan can ask of S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// Permanently delete an object version.
    DeleteVersion,
    /// Remove a delete marker (undeletes when it is the newest).
    DeleteMarker,
    /// Copy an old version over the key (it becomes the newest).
    CopyVersion,
    /// Plain DeleteObject: hides the key behind a new delete marker.
    AddDeleteMarker,
}

impl ActionKind {
    pub const ALL: [ActionKind; 4] = [
        ActionKind::DeleteVersion,
        ActionKind::DeleteMarker,
        ActionKind::CopyVersion,
        ActionKind::AddDeleteMarker,
    ];

    /// The name in the catalog's `actions.kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::DeleteVersion => "delete_version",
            ActionKind::DeleteMarker => "delete_marker",
            ActionKind::CopyVersion => "copy_version",
            ActionKind::AddDeleteMarker => "add_delete_marker",
        }
    }

    pub fn parse(s: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the action names an existing version or marker.
    pub fn needs_version(self) -> bool {
        self != ActionKind::AddDeleteMarker
    }

    /// Whether it removes a version or marker (a DeleteObjects key), as
    /// opposed to writing a new one on top of the key.
    pub fn is_removal(self) -> bool {
        matches!(self, ActionKind::DeleteVersion | ActionKind::DeleteMarker)
    }
}

/// How a version was known to be the one an action made (the catalog's
/// `actions.matched_by`). Anything weaker than these leaves the action
/// `uncertain`: a time after the claim never attributes on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attribution {
    /// S3's answer to the request named it.
    Response,
    /// After a lost answer: the one new entry of the key, with the ETag
    /// of the copied version (equal ETags, equal content).
    Etag,
    /// After a lost answer: the one new entry, with the copied version's
    /// full-object checksum and size.
    Checksum,
    /// After a lost answer: the multipart upload the action recorded is no
    /// longer in progress, and the new entry has the ETag its parts give.
    Upload,
    /// A person said so (`s3rewind plan resolve`).
    Person,
}

impl Attribution {
    pub const ALL: [Attribution; 5] = [
        Attribution::Response,
        Attribution::Etag,
        Attribution::Checksum,
        Attribution::Upload,
        Attribution::Person,
    ];

    /// The name in `actions.matched_by`.
    pub fn as_str(self) -> &'static str {
        match self {
            Attribution::Response => "response",
            Attribution::Etag => "etag",
            Attribution::Checksum => "checksum",
            Attribution::Upload => "upload",
            Attribution::Person => "person",
        }
    }

    pub fn parse(s: &str) -> Option<Attribution> {
        Attribution::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::{ActionKind, Attribution};

    #[test]
    fn attributions_round_trip() {
        for a in Attribution::ALL {
            assert_eq!(Attribution::parse(a.as_str()), Some(a));
        }
    }

    #[test]
    fn names_round_trip() {
        for kind in ActionKind::ALL {
            assert_eq!(ActionKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ActionKind::parse("copy"), None);
    }
}
