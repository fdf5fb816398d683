//! The worklist's writes: an action recorded on a case (its row, a "not our case" review entry,
//! and the `CaseworkerAction` message in the outbox, in one transaction with the audit entry),
//! and an assignment. Each write first finds the case inside the user's scope, in the same
//! transaction: a case outside it is not found, and nothing is written but the refusal's audit.

use chrono::{DateTime, Utc};
use continuity_domain::{Action, ActionKind};
use continuity_store::outbox::Outbox;
use continuity_stream::{KafkaSettings, Topic};
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::{self, Entry, What};
use crate::security::CorrelationId;
use crate::user::{Scope, User};

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The case is not one the user may see.
    #[error("no such case")]
    NotFound,
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The message could not be encoded.
    #[error("encoding the action: {0}")]
    Encode(#[from] continuity_schema::CodecError),
}

async fn lock_visible(
    tx: &mut sqlx::PgConnection,
    scope: &Scope,
    user_name: &str,
    case_id: Uuid,
) -> Result<(), WriteError> {
    let sql = format!(
        "select c.case_id from cases c
         where c.case_id = $3 and {}
         for share",
        scope.visible()
    );
    let found: Option<Uuid> = sqlx::query_scalar(&sql)
        .bind(scope.organisation())
        .bind(user_name)
        .bind(case_id)
        .fetch_optional(&mut *tx)
        .await?;
    found.map(|_| ()).ok_or(WriteError::NotFound)
}

/// Who is writing: the user, the scope they write in, and the request.
#[derive(Clone, Copy)]
pub struct By<'a> {
    /// The user.
    pub user: &'a User,
    /// Their organisation's cases.
    pub scope: &'a Scope,
    /// The request.
    pub correlation: CorrelationId,
}

/// Record `action` on each of `case_ids` at `now`, each with a new action id; all or
/// nothing. Returns the action ids.
pub async fn record_actions(
    pool: &PgPool,
    kafka: &KafkaSettings,
    by: By<'_>,
    case_ids: &[Uuid],
    action: &Action,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, WriteError> {
    let By {
        user,
        scope,
        correlation,
    } = by;
    let mut tx = pool.begin().await?;
    let mut outbox = Outbox::default();
    let mut ids = Vec::new();
    for &case_id in case_ids {
        lock_visible(&mut tx, scope, &user.user_name, case_id).await?;
        let action_id = Uuid::now_v7();
        sqlx::query(
            "insert into case_actions (action_id, case_id, organisation, recorded_by, recorded_at,
                kind, appointment_on, snoozed_until, reason, note)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(action_id)
        .bind(case_id)
        .bind(user.organisation.as_str())
        .bind(&user.user_name)
        .bind(now)
        .bind(action.kind.code())
        .bind(action.appointment_on)
        .bind(action.snoozed_until)
        .bind(&action.reason)
        .bind(&action.note)
        .execute(&mut *tx)
        .await?;
        if action.kind == ActionKind::NotOurCase {
            sqlx::query(
                "insert into case_disputes (action_id, case_id, organisation) values ($1, $2, $3)",
            )
            .bind(action_id)
            .bind(case_id)
            .bind(user.organisation.as_str())
            .execute(&mut *tx)
            .await?;
        }
        let message = continuity_schema::action_message(
            action_id,
            case_id,
            action,
            now,
            user.organisation.as_str(),
        )?;
        outbox.push(
            kafka.topic(Topic::Actions),
            Some(case_id.as_bytes().to_vec()),
            message,
        );
        audit::record(
            &mut *tx,
            Entry {
                user: Some(user),
                what: What::RecordAction,
                subject_type: Some("case"),
                subject_id: Some(case_id.to_string()),
                correlation,
                details: serde_json::json!({ "kind": action.kind.code(), "action_id": action_id }),
            },
        )
        .await?;
        ids.push(action_id);
    }
    outbox.write(&mut tx).await?;
    tx.commit().await?;
    Ok(ids)
}

/// Assign the case to `user` within their organisation.
pub async fn assign_to_me(
    pool: &PgPool,
    by: By<'_>,
    case_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), WriteError> {
    let By {
        user,
        scope,
        correlation,
    } = by;
    let mut tx = pool.begin().await?;
    lock_visible(&mut tx, scope, &user.user_name, case_id).await?;
    sqlx::query(
        "insert into case_assignments (case_id, organisation, assigned_to, assigned_at)
         values ($1, $2, $3, $4)
         on conflict (case_id, organisation) do update set assigned_to = excluded.assigned_to,
            assigned_at = excluded.assigned_at",
    )
    .bind(case_id)
    .bind(user.organisation.as_str())
    .bind(&user.user_name)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        Entry {
            user: Some(user),
            what: What::AssignCase,
            subject_type: Some("case"),
            subject_id: Some(case_id.to_string()),
            correlation,
            details: serde_json::json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
