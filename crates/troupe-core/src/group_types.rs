//! Group types of one project, each bound to a small slot index.
//!
//! Events carry their group ids per type in one column per slot (`group_0` … `group_9`), so
//! counting by a group type is a column switch (PostHog's `$group_0..4`, extended to lists).
//! A slot is freed when its type is deleted and reused by the next new type.

use serde::Serialize;

use crate::error::CoreError;

/// The slot a group type occupies; also the index of its event column.
pub type Slot = u8;

/// The slot no group type takes: backends store a person's pending untyped keys
/// ([`crate::Person::pending_groups`]) as the memberships of this slot. A project has at most 255
/// types (0–254).
pub const PENDING_SLOT: Slot = Slot::MAX;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupType {
    pub slot: Slot,
    /// The key clients send (`company`, `team`, `active_team`).
    pub name: String,
    /// What the dashboard shows; defaults to the name.
    pub display_name: String,
}

/// The registry of one project's group types.
#[derive(Debug, Clone, Default)]
pub struct GroupTypes {
    types: Vec<GroupType>,
}

impl GroupTypes {
    pub fn from_types(mut types: Vec<GroupType>) -> Self {
        types.sort_by_key(|t| t.slot);
        GroupTypes { types }
    }

    pub fn all(&self) -> &[GroupType] {
        &self.types
    }

    pub fn slot_of(&self, name: &str) -> Option<Slot> {
        self.types.iter().find(|t| t.name == name).map(|t| t.slot)
    }

    pub fn by_slot(&self, slot: Slot) -> Option<&GroupType> {
        self.types.iter().find(|t| t.slot == slot)
    }

    /// The slot of `name`, creating the type in the lowest free slot on first use.
    /// Returns the slot and whether the type was created.
    pub fn resolve_or_create(&mut self, field: &str, name: &str, limit: usize) -> Result<(Slot, bool), CoreError> {
        if let Some(slot) = self.slot_of(name) {
            return Ok((slot, false));
        }
        let capacity = limit.min(usize::from(PENDING_SLOT));
        let free = (0..capacity).filter_map(|i| Slot::try_from(i).ok()).find(|slot| self.by_slot(*slot).is_none());
        let Some(slot) = free else {
            return Err(CoreError::GroupTypeLimit { field: field.to_string(), group_type: name.to_string(), limit });
        };
        self.types.push(GroupType { slot, name: name.to_string(), display_name: name.to_string() });
        self.types.sort_by_key(|t| t.slot);
        Ok((slot, true))
    }

    /// Remove a type, freeing its slot. Returns the removed type.
    pub fn remove(&mut self, name: &str) -> Option<GroupType> {
        let index = self.types.iter().position(|t| t.name == name)?;
        Some(self.types.remove(index))
    }

    /// Change a type's key, keeping its slot (and so the attribution already stamped).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<Slot, CoreError> {
        if self.slot_of(to).is_some() {
            return Err(CoreError::invalid("name", format!("group type '{to}' already exists")));
        }
        let t = self
            .types
            .iter_mut()
            .find(|t| t.name == from)
            .ok_or_else(|| CoreError::invalid("group_type", format!("no group type '{from}'")))?;
        if t.display_name == t.name {
            t.display_name = to.to_string();
        }
        t.name = to.to_string();
        Ok(t.slot)
    }

    pub fn set_display_name(&mut self, name: &str, display: &str) -> Result<Slot, CoreError> {
        let t = self
            .types
            .iter_mut()
            .find(|t| t.name == name)
            .ok_or_else(|| CoreError::invalid("group_type", format!("no group type '{name}'")))?;
        t.display_name = display.to_string();
        Ok(t.slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_created_on_first_use_in_the_lowest_free_slot() {
        let mut reg = GroupTypes::default();
        assert_eq!(reg.resolve_or_create("groupKey", "company", 10).unwrap(), (0, true));
        assert_eq!(reg.resolve_or_create("groupKey", "team", 10).unwrap(), (1, true));
        assert_eq!(reg.resolve_or_create("groupKey", "company", 10).unwrap(), (0, false));
    }

    #[test]
    fn past_the_limit_is_a_clear_error_and_deleting_frees_the_slot() {
        let mut reg = GroupTypes::default();
        reg.resolve_or_create("k", "a", 2).unwrap();
        reg.resolve_or_create("k", "b", 2).unwrap();
        let err = reg.resolve_or_create("groupKey", "c", 2).unwrap_err();
        assert_eq!(err.code(), "group_type_limit");
        assert_eq!(err.field(), "groupKey");
        assert!(err.to_string().contains("'c'"));
        reg.remove("a");
        assert_eq!(reg.resolve_or_create("k", "c", 2).unwrap(), (0, true));
    }

    #[test]
    fn rename_keeps_the_slot_and_refuses_an_existing_name() {
        let mut reg = GroupTypes::default();
        reg.resolve_or_create("k", "org", 10).unwrap();
        reg.resolve_or_create("k", "team", 10).unwrap();
        assert_eq!(reg.rename("org", "company").unwrap(), 0);
        assert_eq!(reg.slot_of("company"), Some(0));
        assert_eq!(reg.by_slot(0).map(|t| t.display_name.as_str()), Some("company"));
        assert!(reg.rename("company", "team").is_err());
    }
}
