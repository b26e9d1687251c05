//! Who may do what. Every API route names the [`Permission`] it needs; a dashboard user has a
//! [`Role`] per project, a secret key a [`Scope`](crate::auth::Scope). Both grant an ordered
//! level, so "needs Edit" is one comparison.

use serde::{Deserialize, Serialize};
use troupe_store::Project;

/// What a request needs, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    /// Read data, profiles, saved insights, dashboards, cohorts, settings.
    Read,
    /// Ask questions (`/query`, actors, cohort members): what showing a saved insight takes.
    Query,
    /// Change insights, dashboards, cohorts and group profiles.
    Edit,
    /// Keys, settings, members, erasures, group types, imports, the audit log.
    Admin,
}

impl Permission {
    fn describe(self) -> &'static str {
        match self {
            Permission::Read => "reading",
            Permission::Query => "asking questions",
            Permission::Edit => "the member role (editing insights, dashboards, cohorts, groups)",
            Permission::Admin => "the admin role (keys, settings, members, erasures)",
        }
    }
}

/// A dashboard user's role in one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything, asks questions; changes nothing.
    Viewer,
    /// Also makes and changes insights, dashboards, cohorts and groups.
    Member,
    /// Also keys, settings, members, erasures and the audit log.
    Admin,
}

impl Role {
    pub fn allows(self, need: Permission) -> bool {
        let granted = match self {
            Role::Viewer => Permission::Query,
            Role::Member => Permission::Edit,
            Role::Admin => Permission::Admin,
        };
        granted >= need
    }

    /// The role `text` names; a 400 naming `field` (the API's `role`, the CLI's `--role`) else.
    pub fn parse(text: &str, field: &str) -> Result<Role, crate::ApiError> {
        match text {
            "viewer" => Ok(Role::Viewer),
            "member" => Ok(Role::Member),
            "admin" => Ok(Role::Admin),
            _ => Err(crate::ApiError::BadQuery(format!("{field}: '{text}' is not a role (viewer, member, admin)"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }
}

/// Who made a request, as the audit log names them.
#[derive(Debug, Clone)]
pub enum Actor {
    User { email: String },
    Key { name: String },
}

impl Actor {
    pub fn label(&self) -> String {
        match self {
            Actor::User { email } => format!("user:{email}"),
            Actor::Key { name } => format!("key:{name}"),
        }
    }
}

/// A request allowed into a project.
#[derive(Debug, Clone)]
pub struct Access {
    pub project: Project,
    pub actor: Actor,
}

/// The 403 for a request that lacks `need`.
pub fn refused(holder: &str, project: &str, need: Permission) -> crate::ApiError {
    crate::ApiError::Forbidden(format!(
        "{holder} in project '{project}' does not allow this: it needs {}",
        need.describe()
    ))
}
