//! Verifying the issuer's tokens: signature against its published keys (JWKS, cached, fetched
//! again when a token names a key not yet seen, so the issuer can rotate keys), RS256 or ES256
//! only (never `none`, never a shared-secret algorithm an attacker could sign with the public
//! key), issuer, audience, expiry and not-before.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::RwLock;

use crate::user::Claims;

/// Least time between two fetches of the key set, so tokens naming unknown keys cannot make
/// the worklist hammer the issuer.
const REFETCH_AFTER: Duration = Duration::from_secs(10);

/// Clock skew allowed on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: u64 = 30;

/// Why a token was refused. The messages name the check, never a claim's value.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or its header does not read.
    #[error("the token is not a signed JWT")]
    Malformed,
    /// An algorithm other than RS256 or ES256.
    #[error("the token's algorithm is not accepted (RS256 or ES256 only)")]
    Algorithm,
    /// No `kid`, or one the issuer does not publish.
    #[error("the token's signing key is not one the issuer publishes")]
    UnknownKey,
    /// The signature, issuer, audience, expiry or not-before check failed.
    #[error("the token is invalid: {0}")]
    Invalid(&'static str),
    /// The key set could not be fetched.
    #[error("the issuer's keys could not be fetched ({0}); try again shortly")]
    Keys(String),
}

/// Verifies tokens of one issuer for one audience.
pub struct Verifier {
    jwks_url: String,
    issuer: String,
    audience: String,
    http: reqwest::Client,
    keys: RwLock<(JwkSet, Option<Instant>)>,
}

impl Verifier {
    /// A verifier of tokens from `issuer` (the `iss` claim) for `audience`, with keys at
    /// `jwks_url`. Keys are fetched on first use.
    pub fn new(jwks_url: String, issuer: String, audience: String, http: reqwest::Client) -> Self {
        Verifier {
            jwks_url,
            issuer,
            audience,
            http,
            keys: RwLock::new((JwkSet { keys: Vec::new() }, None)),
        }
    }

    /// The claims of a valid token.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = match self.key(&kid).await {
            Some(key) => key,
            None => {
                self.refetch().await?;
                self.key(&kid).await.ok_or(TokenError::UnknownKey)?
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| TokenError::Invalid(failed_check(e.kind())))
    }

    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        let keys = self.keys.read().await;
        let jwk = keys.0.find(kid)?;
        DecodingKey::from_jwk(jwk).ok()
    }

    async fn refetch(&self) -> Result<(), TokenError> {
        let mut keys = self.keys.write().await;
        if keys.1.is_some_and(|at| at.elapsed() < REFETCH_AFTER) {
            return Ok(());
        }
        let fetched: JwkSet = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| TokenError::Keys(e.without_url().to_string()))?
            .json()
            .await
            .map_err(|e| TokenError::Keys(e.without_url().to_string()))?;
        *keys = (fetched, Some(Instant::now()));
        Ok(())
    }
}

/// Which check a token failed, in words.
fn failed_check(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature => "it has expired",
        K::ImmatureSignature => "it is not valid yet (nbf)",
        K::InvalidIssuer => "another issuer made it",
        K::InvalidAudience => "it is for another client (aud)",
        K::InvalidSignature => "its signature does not verify",
        K::MissingRequiredClaim(_) => "a required claim (exp, iss, aud) is missing",
        K::InvalidAlgorithm => "its algorithm does not match its key",
        K::Json(_) => "its claims are not the expected ones (user_name, auth_source, exp)",
        _ => "it does not decode",
    }
}
