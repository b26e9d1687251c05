//! Membership of a person in groups of one type (DESIGN.md §1): an ordered set of group ids.

/// One change to a person's membership set for one group type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", content = "ids", rename_all = "snake_case")]
pub enum MembershipOp {
    /// Replace the set (`set_group(type, id | [ids])`). An empty list clears it.
    Set(Vec<String>),
    /// Insert one id; idempotent.
    Add(String),
    /// Delete one id; removing an absent id is not an error.
    Remove(String),
}

impl MembershipOp {
    pub fn name(&self) -> &'static str {
        match self {
            MembershipOp::Set(_) => "set_group",
            MembershipOp::Add(_) => "add_group",
            MembershipOp::Remove(_) => "remove_group",
        }
    }

    /// The group ids this op makes a person a member of.
    pub fn joined_ids(&self) -> &[String] {
        match self {
            MembershipOp::Set(ids) => ids,
            MembershipOp::Add(id) => std::slice::from_ref(id),
            MembershipOp::Remove(_) => &[],
        }
    }
}

/// Apply `op` to an ordered set of ids. Returns whether the set changed.
pub fn apply(ids: &mut Vec<String>, op: &MembershipOp) -> bool {
    let before = ids.clone();
    match op {
        MembershipOp::Set(new_ids) => {
            ids.clear();
            for id in new_ids {
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
        MembershipOp::Add(id) => {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        MembershipOp::Remove(id) => ids.retain(|existing| existing != id),
    }
    *ids != before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn set_replaces_the_whole_set_keeping_order_without_duplicates() {
        let mut m = ids(&["acme"]);
        assert!(apply(&mut m, &MembershipOp::Set(ids(&["b", "a", "b"]))));
        assert_eq!(m, ids(&["b", "a"]));
        assert!(apply(&mut m, &MembershipOp::Set(vec![])));
        assert!(m.is_empty());
    }

    #[test]
    fn add_is_idempotent_and_appends_at_the_end() {
        let mut m = ids(&["acme"]);
        assert!(apply(&mut m, &MembershipOp::Add("globex".into())));
        assert!(!apply(&mut m, &MembershipOp::Add("acme".into())));
        assert_eq!(m, ids(&["acme", "globex"]));
    }

    #[test]
    fn remove_deletes_only_that_id_and_tolerates_absent_ids() {
        let mut m = ids(&["acme", "globex"]);
        assert!(apply(&mut m, &MembershipOp::Remove("acme".into())));
        assert!(!apply(&mut m, &MembershipOp::Remove("initech".into())));
        assert_eq!(m, ids(&["globex"]));
    }
}
