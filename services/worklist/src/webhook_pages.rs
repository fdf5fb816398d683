//! The webhooks page: an organisation's endpoints (register, disable) and its delivery log.
//! Caseworkers see and change their own organisation's endpoints only; every view and change
//! is audited.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use uuid::Uuid;

use crate::audit::{Entry, What};
use crate::govuk;
use crate::pages::{audited, database, deny, render, Caseworker, Chrome, Layout};
use crate::security::CorrelationId;
use crate::session::{self, Fields};
use crate::timeline::long_time;
use crate::user::User;
use crate::webhooks;
use crate::Worklist;

/// Attempts shown in the log.
const LOG_ROWS: i64 = 50;

struct EndpointView {
    id: Uuid,
    url: String,
    status: String,
    pending: i64,
    active: bool,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    chrome: Option<Chrome>,
    csrf: String,
    disable_after_days: i64,
    new_secret: Option<String>,
    endpoints: Vec<EndpointView>,
    attempts: Vec<(String, String, String, String)>,
    url: String,
    error: Option<String>,
    error_summary: Option<String>,
}

impl Layout for WebhooksPage {}

#[allow(clippy::too_many_arguments)]
async fn show(
    app: &Worklist,
    user: &User,
    chrome: Chrome,
    correlation: CorrelationId,
    new_secret: Option<String>,
    url: String,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, Response> {
    let org = user.organisation.as_str();
    let (endpoints, attempts) = match tokio::try_join!(
        webhooks::endpoints(&app.pool, org),
        webhooks::attempts(&app.pool, org, LOG_ROWS)
    ) {
        Ok(r) => r,
        Err(e) => return Err(database(e)),
    };
    app.metrics.viewed("webhooks");
    audited(app, Entry {
            user: Some(user),
            what: What::ViewWebhooks,
            subject_type: Some("webhooks"),
            subject_id: Some(org.to_owned()),
            correlation,
            details: serde_json::json!({ "endpoints": endpoints.len(), "attempts": attempts.len() }),
        })
    .await?;
    let page = WebhooksPage {
        csrf: chrome.csrf.clone(),
        chrome: Some(chrome),
        disable_after_days: app.dispatch.disable_after.num_days(),
        new_secret,
        endpoints: endpoints
            .into_iter()
            .map(|e| EndpointView {
                id: e.endpoint_id,
                status: match (
                    &e.disabled_at,
                    e.disabled_reason.as_deref(),
                    &e.failing_since,
                ) {
                    (Some(at), Some("GONE"), _) => format!(
                        "Disabled {}: the receiver answered 410 Gone",
                        long_time(*at)
                    ),
                    (Some(at), Some("FAILING"), _) => {
                        format!("Disabled {}: failing for too long", long_time(*at))
                    }
                    (Some(at), _, _) => format!("Disabled {}", long_time(*at)),
                    (None, _, Some(since)) => format!("Failing since {}", long_time(*since)),
                    (None, _, None) => "Active".into(),
                },
                active: e.disabled_at.is_none(),
                url: e.url,
                pending: e.pending,
            })
            .collect(),
        attempts: attempts
            .into_iter()
            .map(|a| {
                let result = match (a.status, a.error) {
                    (Some(s), None) if (200..300).contains(&s) => {
                        format!("{s}: delivered in {} ms", a.duration_ms)
                    }
                    (Some(s), Some(e)) => format!("{s}: {e}"),
                    (Some(s), None) => format!("{s}: not accepted; will be tried again"),
                    (None, Some(e)) => e,
                    (None, None) => "failed".into(),
                };
                (long_time(a.attempted_at), a.url, a.message_id, result)
            })
            .collect(),
        url,
        error_summary: error.map(|e| {
            govuk::error_summary(
                "There is a problem",
                &[govuk::ErrorLink {
                    text: e,
                    href: Some("#url"),
                }],
            )
        }),
        error: error.map(|e| govuk::error_message(Some("url-error"), e)),
    };
    Ok(render(status, page))
}

/// `GET /webhooks`.
pub(crate) async fn page(
    State(app): State<Arc<Worklist>>,
    cw: Caseworker,
) -> Result<Response, Response> {
    let Caseworker {
        user,
        chrome,
        scope: _,
        correlation,
        session: _,
    } = cw;
    show(
        &app,
        &user,
        chrome,
        correlation,
        None,
        String::new(),
        None,
        StatusCode::OK,
    )
    .await
}

/// `POST /webhooks`: register an endpoint.
pub(crate) async fn register(
    State(app): State<Arc<Worklist>>,
    cw: Caseworker,
    Form(fields): Form<Fields>,
) -> Result<Response, Response> {
    let Caseworker {
        user,
        chrome,
        scope: _,
        correlation,
        session,
    } = cw;
    session::check_csrf(&session, &fields).await?;
    let url = fields.text("url");
    if let Err(problem) = webhooks::check_url(&url) {
        return show(
            &app,
            &user,
            chrome,
            correlation,
            None,
            url,
            Some(problem),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let (id, secret) =
        webhooks::register(&app.pool, user.organisation.as_str(), &url, &user.user_name)
            .await
            .map_err(database)?;
    audited(
        &app,
        Entry {
            user: Some(&user),
            what: What::RegisterWebhook,
            subject_type: Some("webhook_endpoint"),
            subject_id: Some(id.to_string()),
            correlation,
            details: serde_json::json!({}),
        },
    )
    .await?;
    show(
        &app,
        &user,
        chrome,
        correlation,
        Some(secret),
        String::new(),
        None,
        StatusCode::OK,
    )
    .await
}

/// `POST /webhooks/{id}/disable`.
pub(crate) async fn disable(
    State(app): State<Arc<Worklist>>,
    cw: Caseworker,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, Response> {
    let Caseworker {
        user,
        chrome,
        scope: _,
        correlation,
        session,
    } = cw;
    session::check_csrf(&session, &fields).await?;
    let done = match Uuid::parse_str(&id) {
        Ok(endpoint) => webhooks::disable(&app.pool, user.organisation.as_str(), endpoint)
            .await
            .map_err(database)?,
        Err(_) => false,
    };
    if !done {
        return Err(deny(
            &app,
            &user,
            chrome,
            correlation,
            Some(("webhooks", id)),
            StatusCode::NOT_FOUND,
        )
        .await);
    }
    audited(
        &app,
        Entry {
            user: Some(&user),
            what: What::DisableWebhook,
            subject_type: Some("webhook_endpoint"),
            subject_id: Some(id),
            correlation,
            details: serde_json::json!({}),
        },
    )
    .await?;
    session::flash(&session, "Endpoint disabled").await?;
    Ok(Redirect::to("/webhooks").into_response())
}
