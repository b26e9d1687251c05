//! Membership of a person in groups of one type (DESIGN.md §1): an ordered set of group ids.

use chrono::{DateTime, Utc};

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

/// What a client's "the user is in this group" call does to the user's set of the group's type,
/// for protocols that have no separate add and replace (Segment's `group`). Per project
/// (`troupe_store::settings::IngestionSettings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinRule {
    /// The group becomes the user's only group of its type (`set_group`): a user who switches
    /// workspace is attributed to the one they switched to.
    #[default]
    Replace,
    /// The group is added to the user's groups of its type (`add_group`).
    Add,
}

impl JoinRule {
    /// The membership op joining `key` under this rule.
    pub fn op(self, key: String) -> MembershipOp {
        match self {
            JoinRule::Replace => MembershipOp::Set(vec![key]),
            JoinRule::Add => MembershipOp::Add(key),
        }
    }
}

/// One person's set for one group type, as a merge sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TypeSet {
    pub ids: Vec<String>,
    /// When a `set_group` last replaced the set (`None`: built by `add_group` only).
    pub replaced_at: Option<DateTime<Utc>>,
}

/// The set a merged person keeps for one type when `merged` (usually the anonymous person)
/// joins `survivor` (docs/semantics.md, "Identity and memberships"):
/// - neither set was ever replaced (`add_group` types): the union, the survivor's ids first;
/// - otherwise the most recent `set_group` wins the type whole: a replaced set states all of
///   the person's groups of that type, `add_group`s only some. On a tie, the survivor's.
pub fn merge(survivor: TypeSet, merged: TypeSet) -> TypeSet {
    match (survivor.replaced_at, merged.replaced_at) {
        (None, None) => {
            let mut ids = survivor.ids;
            for id in merged.ids {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            TypeSet { ids, replaced_at: None }
        }
        (Some(kept), Some(other)) if kept >= other => survivor,
        (Some(_), None) => survivor,
        _ => merged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

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

    fn set(v: &[&str], replaced_at: Option<i64>) -> TypeSet {
        TypeSet { ids: ids(v), replaced_at: replaced_at.map(|s| Utc.timestamp_opt(s, 0).single().expect("time")) }
    }

    #[test]
    fn a_merge_of_two_added_sets_is_their_union_survivor_first() {
        let merged = merge(set(&["acme", "globex"], None), set(&["initech", "acme"], None));
        assert_eq!(merged, set(&["acme", "globex", "initech"], None));
    }

    #[test]
    fn a_merge_keeps_the_most_recent_set_group_whole() {
        assert_eq!(merge(set(&["acme"], Some(10)), set(&["globex"], Some(20))), set(&["globex"], Some(20)));
        assert_eq!(merge(set(&["acme"], Some(20)), set(&["globex"], Some(10))), set(&["acme"], Some(20)));
        assert_eq!(merge(set(&["acme"], Some(10)), set(&["globex"], Some(10))), set(&["acme"], Some(10)), "tie");
    }

    #[test]
    fn a_replaced_set_wins_over_one_built_by_adds_on_either_side() {
        assert_eq!(merge(set(&["acme"], Some(5)), set(&["globex", "initech"], None)), set(&["acme"], Some(5)));
        assert_eq!(merge(set(&["acme", "globex"], None), set(&["initech"], Some(5))), set(&["initech"], Some(5)));
    }
}
