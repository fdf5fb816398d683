//! Signing in and out: the OAuth2 authorisation-code flow with PKCE (S256) and `state`
//! against the configured issuer (the `oauth2` crate), the access token verified against the
//! issuer's keys ([`crate::tokens`]), and a new server-side session for the user it names.

use std::sync::Arc;

use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, TokenResponse};
use serde::Deserialize;
use tower_sessions::Session;

use crate::audit::{self, Entry, What};
use crate::pages::{message_page, Message};
use crate::security::CorrelationId;
use crate::session::{self, Fields, PendingSignIn};
use crate::user::User;
use crate::Worklist;

#[derive(Deserialize)]
pub(crate) struct SignInQuery {
    #[serde(default)]
    return_to: Option<String>,
}

/// `GET /sign-in`: send the browser to the issuer.
pub(crate) async fn start(
    State(app): State<Arc<Worklist>>,
    session: Session,
    Query(q): Query<SignInQuery>,
) -> Result<Response, Response> {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = app
        .oauth
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let return_to = q
        .return_to
        .as_deref()
        .and_then(session::safe_return_path)
        .unwrap_or("/")
        .to_owned();
    let pending = PendingSignIn {
        state: state.secret().clone(),
        verifier: verifier.secret().clone(),
        return_to,
    };
    session::begin_sign_in(&session, &pending).await?;
    Ok(Redirect::to(url.as_str()).into_response())
}

#[derive(Deserialize)]
pub(crate) struct Callback {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

fn refused(status: StatusCode, heading: &str, text: &str) -> Response {
    message_page(
        status,
        Message {
            chrome: None,
            heading: heading.into(),
            paragraphs: vec![text.into()],
            link: Some(("/sign-in".into(), "Sign in again".into())),
        },
    )
}

/// `GET /sign-in/callback`: exchange the code, verify the token, start the session.
pub(crate) async fn callback(
    State(app): State<Arc<Worklist>>,
    Extension(correlation): Extension<CorrelationId>,
    session: Session,
    Query(cb): Query<Callback>,
) -> Result<Response, Response> {
    let pending = session::take_sign_in(&session).await?;
    let (Some(pending), Some(code), Some(state)) = (pending, cb.code, cb.state) else {
        let text = if cb.error.is_some() {
            "The sign-in service did not sign you in."
        } else {
            "The sign-in did not start here, or took too long."
        };
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "You are not signed in",
            text,
        ));
    };
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        state.as_bytes(),
        pending.state.as_bytes(),
    )) {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "You are not signed in",
            "The sign-in response does not belong to the sign-in started here.",
        ));
    }
    let token = app
        .oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(&app.http)
        .await;
    let token = match token {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "the issuer refused the code exchange");
            return Err(refused(
                StatusCode::BAD_GATEWAY,
                "You are not signed in",
                "The sign-in service could not complete the sign-in. Try again.",
            ));
        }
    };
    let claims = match app.verifier.verify(token.access_token().secret()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "a token from the issuer was refused");
            return Err(refused(
                StatusCode::UNAUTHORIZED,
                "You are not signed in",
                "The sign-in service's token could not be verified.",
            ));
        }
    };
    let user = match User::from_claims(&claims) {
        Ok(u) => u,
        Err(why) => {
            let _ = audit::record(
                &app.pool,
                Entry {
                    user: None,
                    what: What::AccessDenied,
                    subject_type: Some("service"),
                    subject_id: None,
                    correlation,
                    details: serde_json::json!({ "reason": why.to_string() }),
                },
            )
            .await;
            return Err(refused(
                StatusCode::FORBIDDEN,
                "You do not have access to this service",
                &why.to_string(),
            ));
        }
    };
    session::sign_in(&session, &user).await?;
    if let Err(e) = audit::record(
        &app.pool,
        Entry {
            user: Some(&user),
            what: What::SignIn,
            subject_type: None,
            subject_id: None,
            correlation,
            details: serde_json::json!({ "role": user.role.code() }),
        },
    )
    .await
    {
        tracing::error!(error = %e, "the audit trail cannot be written");
        let _ = session::sign_out(&session).await;
        return Err(crate::pages::unavailable());
    }
    Ok(Redirect::to(&pending.return_to).into_response())
}

/// `POST /sign-out`: end the session.
pub(crate) async fn sign_out(
    State(app): State<Arc<Worklist>>,
    Extension(correlation): Extension<CorrelationId>,
    session: Session,
    Form(fields): Form<Fields>,
) -> Result<Response, Response> {
    session::check_csrf(&session, &fields).await?;
    let user = session::signed_in(&session, "/", chrono::Utc::now().timestamp())
        .await
        .ok();
    if let Some(user) = &user {
        let _ = audit::record(
            &app.pool,
            Entry {
                user: Some(user),
                what: What::SignOut,
                subject_type: None,
                subject_id: None,
                correlation,
                details: serde_json::json!({}),
            },
        )
        .await;
    }
    session::sign_out(&session).await?;
    Ok(message_page(
        StatusCode::OK,
        Message {
            chrome: None,
            heading: "You have signed out".into(),
            paragraphs: vec!["Close the browser window if you are on a shared computer.".into()],
            link: Some(("/sign-in".into(), "Sign in".into())),
        },
    ))
}
