//! Service permissions (who may connect besides the owner).

use crate::StoreResult;
use sqlx::AnyConnection;

/// The permission entries of a service, as stored, inside the caller's transaction.
pub(crate) async fn permission_entries(
    conn: &mut AnyConnection,
    service_id: &str,
) -> StoreResult<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT permission FROM service_permissions WHERE service_id = $1")
            .bind(service_id)
            .fetch_all(&mut *conn)
            .await?,
    )
}
