//! The audit trail of the worklist (`worklist_audit`): every page showing a person's data,
//! every export, change and refusal, with who, what, when, the subject and the request's
//! correlation id. Details hold counts and filters, never a person's identifiers. A read is
//! audited before the page is sent: when the audit row cannot be written, the page is not
//! shown.

use serde_json::Value;
use sqlx::PgExecutor;

use crate::security::CorrelationId;
use crate::user::User;

/// What happened: the stored codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// The worklist page was shown.
    ViewWorklist,
    /// A case page was shown.
    ViewCase,
    /// The area's counts were shown (commissioners).
    ViewArea,
    /// The filtered worklist was exported as CSV.
    ExportWorklist,
    /// An action was recorded.
    RecordAction,
    /// A case was assigned.
    AssignCase,
    /// The webhooks page was shown.
    ViewWebhooks,
    /// A webhook endpoint was registered.
    RegisterWebhook,
    /// A webhook endpoint was disabled.
    DisableWebhook,
    /// Signed in.
    SignIn,
    /// Signed out.
    SignOut,
    /// A request was refused (another organisation's case, a page the role may not see).
    AccessDenied,
}

impl What {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            What::ViewWorklist => "PAGE_VIEW_WORKLIST",
            What::ViewCase => "PAGE_VIEW_CASE",
            What::ViewArea => "PAGE_VIEW_AREA",
            What::ExportWorklist => "EXPORT_WORKLIST",
            What::RecordAction => "RECORD_ACTION",
            What::AssignCase => "ASSIGN_CASE",
            What::ViewWebhooks => "PAGE_VIEW_WEBHOOKS",
            What::RegisterWebhook => "REGISTER_WEBHOOK",
            What::DisableWebhook => "DISABLE_WEBHOOK",
            What::SignIn => "SIGN_IN",
            What::SignOut => "SIGN_OUT",
            What::AccessDenied => "ACCESS_DENIED",
        }
    }
}

/// One audit entry.
pub struct Entry<'a> {
    /// Who (`None` before anyone is signed in: the user name is then `anonymous`).
    pub user: Option<&'a User>,
    /// What.
    pub what: What,
    /// The subject's type (`case`, `worklist`, `area`).
    pub subject_type: Option<&'static str>,
    /// The subject's id (a case id, an area code).
    pub subject_id: Option<String>,
    /// The request.
    pub correlation: CorrelationId,
    /// Counts and filters.
    pub details: Value,
}

/// Write `entry`.
pub async fn record<'e>(db: impl PgExecutor<'e>, entry: Entry<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into worklist_audit (user_name, organisation, what, subject_type, subject_id,
            correlation_id, details)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(entry.user.map_or("anonymous", |u| u.user_name.as_str()))
    .bind(entry.user.map(|u| u.organisation.as_str()))
    .bind(entry.what.code())
    .bind(entry.subject_type)
    .bind(entry.subject_id)
    .bind(entry.correlation.0)
    .bind(entry.details)
    .execute(db)
    .await?;
    Ok(())
}
