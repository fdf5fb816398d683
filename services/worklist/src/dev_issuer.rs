//! The development issuer: an OAuth2 authorisation server of the project's own, for the local
//! stack and the tests only, shaped like HMPPS Auth (the same paths, an ES256-signed JWT access
//! token with `user_name`, `name`, `auth_source`, `authorities` and an `organisation` claim).
//! Its sign-in page lists a handful of test users; choosing one signs in as them. It supports
//! the authorisation-code grant with PKCE (S256 only), single-use codes that expire after a
//! minute, exact redirect URIs, and publishes its key (made afresh at each start) at
//! `/.well-known/jwks.json`. It also gives the services tokens by the client-credentials grant
//! ([`SERVICE_CLIENTS`]), as a broker's OAUTHBEARER listener expects them: `sub` the client,
//! audience `kafka`. Never deploy it: it authenticates nobody.
//!
//! Written here rather than taken from a library because no maintained Rust crate runs an
//! authorisation server for tests; it is small and the worklist's tests drive it over HTTP
//! like the real one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use continuity_runtime::Checked;

use crate::session::random_token;

/// How long a code may wait to be exchanged.
const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// Seconds an access token lasts.
pub const TOKEN_SECONDS: i64 = 3600;

/// The service clients of the client-credentials grant, id and secret: the services' identity
/// at a Kafka listener that takes OAUTHBEARER tokens.
pub const SERVICE_CLIENTS: &[(&str, &str)] =
    &[("continuity-services", "continuity-services-dev-secret")];

/// The audience of a service client's token.
pub const SERVICE_AUDIENCE: &str = "kafka";

/// A test user.
#[derive(Debug, Clone, Serialize)]
pub struct TestUser {
    /// Log-in name.
    pub user_name: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Account kind.
    pub auth_source: &'static str,
    /// Roles.
    pub authorities: &'static [&'static str],
    /// Organisation claim.
    pub organisation: &'static str,
    /// What the user is for, on the sign-in page.
    pub description: &'static str,
}

/// The test users: one per role for the sample's organisations, and a second probation
/// service and provider so that one organisation's cases can be shown invisible to another.
pub const TEST_USERS: &[TestUser] = &[
    TestUser {
        user_name: "PRACTITIONER",
        name: "Pat Practitioner",
        auth_source: "delius",
        authorities: &["ROLE_PROBATION"],
        organisation: "probation",
        description: "Probation practitioner at the sample's probation service (probation)",
    },
    TestUser {
        user_name: "PRACTITIONER_OTHER",
        name: "Olu Other",
        auth_source: "delius",
        authorities: &["ROLE_PROBATION"],
        organisation: "probation-other",
        description: "Probation practitioner at another probation service (probation-other)",
    },
    TestUser {
        user_name: "KEYWORKER",
        name: "Kim Keyworker",
        auth_source: "external",
        authorities: &["ROLE_CONTINUITY_KEYWORKER"],
        organisation: "PRV000",
        description: "Treatment keyworker at the sample's provider PRV000",
    },
    TestUser {
        user_name: "KEYWORKER_OTHER",
        name: "Kai Other",
        auth_source: "external",
        authorities: &["ROLE_CONTINUITY_KEYWORKER"],
        organisation: "PRV001",
        description: "Treatment keyworker at provider PRV001",
    },
    TestUser {
        user_name: "COMMISSIONER",
        name: "Cam Commissioner",
        auth_source: "azuread",
        authorities: &["ROLE_CONTINUITY_COMMISSIONER"],
        organisation: "E06000001",
        description: "Commissioner for local authority E06000001 (counts only)",
    },
    TestUser {
        user_name: "OPERATOR",
        name: "Ola Operator",
        auth_source: "azuread",
        authorities: &["ROLE_CONTINUITY_OPERATOR"],
        organisation: "continuity",
        description: "Operator (no personal data)",
    },
    TestUser {
        user_name: "NO_ROLE",
        name: "Nia Norole",
        auth_source: "nomis",
        authorities: &["ROLE_PRISON"],
        organisation: "MDI",
        description: "Prison staff with no role in this service (refused)",
    },
];

/// The development issuer's configuration (file, then `CONTINUITY_*` variables).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IssuerSettings {
    /// Where it listens.
    pub http_addr: SocketAddr,
    /// Its URL as browsers and the worklist reach it; also its tokens' `iss`.
    pub issuer_url: String,
    /// The one client it serves.
    pub client_id: String,
    /// The client's callback, matched exactly.
    pub redirect_uri: String,
}

impl Default for IssuerSettings {
    fn default() -> Self {
        IssuerSettings {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 9105)),
            issuer_url: "http://localhost:9105".into(),
            client_id: "continuity-worklist".into(),
            redirect_uri: "http://localhost:9104/sign-in/callback".into(),
        }
    }
}

impl Checked for IssuerSettings {}

struct Grant {
    user: &'static TestUser,
    challenge: String,
    redirect_uri: String,
    issued: Instant,
}

/// A running development issuer's state.
pub struct DevIssuer {
    settings: IssuerSettings,
    kid: String,
    key: EncodingKey,
    jwks: serde_json::Value,
    codes: Mutex<HashMap<String, Grant>>,
}

impl DevIssuer {
    /// An issuer with a new P-256 key.
    pub fn new(settings: IssuerSettings) -> anyhow::Result<Self> {
        let secret = loop {
            let bytes: [u8; 32] = rand::random();
            if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
                break secret;
            }
        };
        let pem = secret.to_pkcs8_pem(LineEnding::LF)?;
        let key = EncodingKey::from_ec_pem(pem.as_bytes())?;
        let kid = format!("dev-{}", &random_token()[..8]);
        let mut jwk = serde_json::to_value(secret.public_key().to_jwk())?;
        jwk["kid"] = kid.clone().into();
        jwk["alg"] = "ES256".into();
        jwk["use"] = "sig".into();
        Ok(DevIssuer {
            settings,
            kid,
            key,
            jwks: serde_json::json!({ "keys": [jwk] }),
            codes: Mutex::new(HashMap::new()),
        })
    }

    /// `claims` signed with the issuer's key (ES256, its `kid`): for tests that need tokens
    /// the issuer would not give out.
    pub fn sign(&self, claims: &serde_json::Value) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.key)?)
    }

    /// The issuer's public key set, as `/.well-known/jwks.json` serves it.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    /// A signed access token for `user`, valid from `now` (seconds since the epoch).
    pub fn mint(&self, user: &TestUser, now: i64) -> anyhow::Result<String> {
        self.sign(&self.claims(user, now))
    }

    /// The claims of `user`'s access token issued at `now`.
    pub fn claims(&self, user: &TestUser, now: i64) -> serde_json::Value {
        serde_json::json!({
            "iss": self.settings.issuer_url,
            "aud": self.settings.client_id,
            "sub": user.user_name,
            "user_name": user.user_name,
            "name": user.name,
            "auth_source": user.auth_source,
            "authorities": user.authorities,
            "organisation": user.organisation,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_SECONDS,
            "jti": random_token(),
        })
    }

    /// The issuer's routes: HMPPS Auth's paths.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/oauth/authorize", get(authorize_page).post(authorize))
            .route("/oauth/token", axum::routing::post(token))
            .route("/.well-known/jwks.json", get(jwks))
            .route("/healthz", get(|| async { "ok\n" }))
            .with_state(self)
    }
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    #[serde(default)]
    state: String,
    code_challenge: String,
    code_challenge_method: String,
}

#[derive(Template)]
#[template(path = "dev_issuer.html")]
struct SignInPage<'a> {
    users: &'a [TestUser],
    query: &'a AuthorizeQuery,
}

fn check_request(issuer: &DevIssuer, q: &AuthorizeQuery) -> Result<(), (StatusCode, String)> {
    let refuse = |what: &str| Err((StatusCode::BAD_REQUEST, format!("{what}\n")));
    if q.response_type != "code" {
        return refuse("response_type must be code");
    }
    if q.client_id != issuer.settings.client_id {
        return refuse("client_id is not a client of this issuer");
    }
    if q.redirect_uri != issuer.settings.redirect_uri {
        return refuse("redirect_uri is not the client's registered callback");
    }
    if q.code_challenge_method != "S256" || q.code_challenge.len() < 43 {
        return refuse("PKCE is required: code_challenge_method=S256 with a code_challenge");
    }
    Ok(())
}

async fn authorize_page(
    State(issuer): State<Arc<DevIssuer>>,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    if let Err(refused) = check_request(&issuer, &q) {
        return refused.into_response();
    }
    let page = SignInPage {
        users: TEST_USERS,
        query: &q,
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct Chosen {
    user_name: String,
    #[serde(flatten)]
    query: AuthorizeQuery,
}

async fn authorize(State(issuer): State<Arc<DevIssuer>>, Form(chosen): Form<Chosen>) -> Response {
    let q = &chosen.query;
    if let Err(refused) = check_request(&issuer, q) {
        return refused.into_response();
    }
    let Some(user) = TEST_USERS.iter().find(|u| u.user_name == chosen.user_name) else {
        return (StatusCode::BAD_REQUEST, "no such test user\n").into_response();
    };
    let code = random_token();
    let mut codes = issuer.codes.lock().unwrap_or_else(|p| p.into_inner());
    codes.retain(|_, g| g.issued.elapsed() < CODE_LIFETIME);
    codes.insert(
        code.clone(),
        Grant {
            user,
            challenge: q.code_challenge.clone(),
            redirect_uri: q.redirect_uri.clone(),
            issued: Instant::now(),
        },
    );
    // The registered callback (checked above), with the code and state added.
    let Ok(mut target) = reqwest::Url::parse(&q.redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is not a URL\n").into_response();
    };
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &q.state);
    Redirect::to(target.as_str()).into_response()
}

#[derive(Deserialize)]
struct TokenRequest {
    grant_type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    code_verifier: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Serialize)]
struct OAuthError {
    error: &'static str,
    error_description: &'static str,
}

fn oauth_error(error: &'static str, error_description: &'static str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(OAuthError {
            error,
            error_description,
        }),
    )
        .into_response()
}

/// The client id and secret from HTTP Basic authentication (the secret empty for the
/// worklist, a public client with PKCE).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':').unwrap_or((&text, ""));
    Some((id.to_owned(), secret.to_owned()))
}

/// The client-credentials grant: a token for a service client.
fn service_token(issuer: &DevIssuer, headers: &HeaderMap, req: &TokenRequest) -> Response {
    let (id, secret) = match basic_credentials(headers) {
        Some(basic) => basic,
        None => (
            req.client_id.clone().unwrap_or_default(),
            req.client_secret.clone().unwrap_or_default(),
        ),
    };
    if !SERVICE_CLIENTS
        .iter()
        .any(|(i, s)| *i == id && *s == secret)
    {
        return oauth_error("invalid_client", "unknown client or wrong secret");
    }
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": issuer.settings.issuer_url,
        "aud": SERVICE_AUDIENCE,
        "sub": id,
        "scope": req.scope.clone().unwrap_or_default(),
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_SECONDS,
        "jti": random_token(),
    });
    token_response(issuer.sign(&claims))
}

async fn token(
    State(issuer): State<Arc<DevIssuer>>,
    headers: HeaderMap,
    Form(req): Form<TokenRequest>,
) -> Response {
    match req.grant_type.as_str() {
        "authorization_code" => {}
        "client_credentials" => return service_token(&issuer, &headers, &req),
        _ => {
            return oauth_error(
                "unsupported_grant_type",
                "authorization_code or client_credentials",
            )
        }
    }
    let client = req
        .client_id
        .clone()
        .or_else(|| basic_credentials(&headers).map(|(id, _)| id));
    if client.as_deref() != Some(issuer.settings.client_id.as_str()) {
        return oauth_error("invalid_client", "unknown client");
    }
    let grant = issuer
        .codes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&req.code);
    let Some(grant) = grant.filter(|g| g.issued.elapsed() < CODE_LIFETIME) else {
        return oauth_error("invalid_grant", "the code is unknown, used or expired");
    };
    if grant.redirect_uri != req.redirect_uri {
        return oauth_error(
            "invalid_grant",
            "redirect_uri differs from the authorisation's",
        );
    }
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(req.code_verifier.as_bytes()));
    if computed != grant.challenge {
        return oauth_error(
            "invalid_grant",
            "code_verifier does not match the challenge",
        );
    }
    let now = chrono::Utc::now().timestamp();
    token_response(issuer.mint(grant.user, now))
}

/// The token endpoint's answer for a signed token.
fn token_response(signed: anyhow::Result<String>) -> Response {
    match signed {
        Ok(access_token) => Json(serde_json::json!({
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": TOKEN_SECONDS,
        }))
        .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "could not sign\n").into_response(),
    }
}

async fn jwks(State(issuer): State<Arc<DevIssuer>>) -> Json<serde_json::Value> {
    Json(issuer.jwks.clone())
}
