//! What a session holds (the signed-in user, the CSRF token, a sign-in in progress, a message
//! for the next page) and the checks every handler makes with it: signed in, token not expired,
//! and, on every form, the CSRF token. Sessions live in PostgreSQL (`tower-sessions`), keyed by
//! a `__Host-` cookie.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::user::User;

/// The session cookie's name: `__Host-` binds it to this host, over HTTPS, path `/`.
pub const COOKIE: &str = "__Host-continuity";

/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";

const USER: &str = "user";
const CSRF: &str = "csrf";
const SIGN_IN: &str = "sign_in";
const FLASH: &str = "flash";

/// A sign-in started here and not yet come back from the issuer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    /// The OAuth2 `state` sent.
    pub state: String,
    /// The PKCE verifier of the challenge sent.
    pub verifier: String,
    /// Where to go once signed in (a path of this service).
    pub return_to: String,
}

/// A random token, URL-safe.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A session store failure, as a page.
fn unavailable(e: tower_sessions::session::Error) -> Response {
    tracing::error!(error = %e, "session store failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "The service is unavailable: sessions cannot be read. Try again in a few minutes.\n",
    )
        .into_response()
}

/// The path to return to after signing in, if it is one of this service's (never another
/// site's: `//host` and `/\host` are refused).
pub fn safe_return_path(path: &str) -> Option<&str> {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.contains(['\r', '\n']);
    ok.then_some(path)
}

/// The signed-in user, or a redirect to sign in (coming back to `here`). A session whose
/// token has expired is ended.
pub async fn signed_in(session: &Session, here: &str, now: i64) -> Result<User, Response> {
    let user: Option<User> = session.get(USER).await.map_err(unavailable)?;
    match user {
        Some(user) if user.expires_at > now => Ok(user),
        Some(_) => {
            session.flush().await.map_err(unavailable)?;
            Err(sign_in_redirect(here))
        }
        None => Err(sign_in_redirect(here)),
    }
}

fn sign_in_redirect(here: &str) -> Response {
    let target = safe_return_path(here).unwrap_or("/");
    let encoded: String = url_escape(target);
    Redirect::to(&format!("/sign-in?return_to={encoded}")).into_response()
}

/// Percent-encode text for a query value.
pub fn url_escape(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// Start a new session for `user`: a new id (so a session id planted before sign-in is
/// worthless) and a new CSRF token.
pub async fn sign_in(session: &Session, user: &User) -> Result<(), Response> {
    session.cycle_id().await.map_err(unavailable)?;
    session
        .remove::<PendingSignIn>(SIGN_IN)
        .await
        .map_err(unavailable)?;
    session.insert(USER, user).await.map_err(unavailable)?;
    session
        .insert(CSRF, random_token())
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// Keep a sign-in in progress.
pub async fn begin_sign_in(session: &Session, pending: &PendingSignIn) -> Result<(), Response> {
    session.insert(SIGN_IN, pending).await.map_err(unavailable)
}

/// The sign-in in progress, taken (it is used once).
pub async fn take_sign_in(session: &Session) -> Result<Option<PendingSignIn>, Response> {
    session.remove(SIGN_IN).await.map_err(unavailable)
}

/// End the session.
pub async fn sign_out(session: &Session) -> Result<(), Response> {
    session.flush().await.map_err(unavailable)
}

/// The session's CSRF token, for forms.
pub async fn csrf_token(session: &Session) -> Result<String, Response> {
    let token: Option<String> = session.get(CSRF).await.map_err(unavailable)?;
    Ok(token.unwrap_or_default())
}

/// Refuse a form whose CSRF token is not the session's.
pub async fn check_csrf(session: &Session, fields: &Fields) -> Result<(), Response> {
    let expected = csrf_token(session).await?;
    let given = fields.get(CSRF_FIELD).unwrap_or("");
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        return Err((
            StatusCode::FORBIDDEN,
            "The form has expired or did not come from this service. Go back, reload the page and try again.\n",
        )
            .into_response());
    }
    Ok(())
}

/// Keep a message for the next page shown.
pub async fn flash(session: &Session, message: &str) -> Result<(), Response> {
    session.insert(FLASH, message).await.map_err(unavailable)
}

/// The message kept for this page, taken. (Looked up first: removing marks the session
/// changed, which would write it back on every page.)
pub async fn take_flash(session: &Session) -> Result<Option<String>, Response> {
    let flash: Option<String> = session.get(FLASH).await.map_err(unavailable)?;
    if flash.is_some() {
        session.remove::<String>(FLASH).await.map_err(unavailable)?;
    }
    Ok(flash)
}

/// A submitted form's fields in order (a field may repeat, as checkboxes do).
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or empty.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_services_paths_are_returned_to() {
        assert_eq!(safe_return_path("/cases/1?x=2"), Some("/cases/1?x=2"));
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "x",
            "/a\r\nb",
        ] {
            assert_eq!(safe_return_path(bad), None, "{bad}");
        }
    }
}
