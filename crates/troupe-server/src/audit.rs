//! Recording administrative actions in the store's audit log.

use serde_json::Value;
use troupe_core::ProjectId;
use troupe_store::audit::AuditEntry;
use troupe_store::Store;

/// Append an entry. The action is done by now: a failure to record it is logged loudly rather
/// than undoing or refusing it.
pub async fn record(store: &dyn Store, project: ProjectId, actor: &str, action: &str, target: &str, details: Value) {
    let entry = AuditEntry::new(actor, action, target, details);
    if let Err(e) = store.append_audit(project, entry).await {
        tracing::error!(project, actor, action, target, error = %e, "could not write the audit log entry");
    }
}
