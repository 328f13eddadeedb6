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

#[cfg(test)]
mod tests {
    use super::ActionKind;

    #[test]
    fn names_round_trip() {
        for kind in ActionKind::ALL {
            assert_eq!(ActionKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ActionKind::parse("copy"), None);
    }
}
