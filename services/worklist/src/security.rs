//! Headers every response carries, and the request's correlation id. Personal pages must not be
//! cached, framed, sniffed or leak their URL; scripts run only from `/assets` and the one inline
//! line the GOV.UK template needs, allowed by its hash (no nonces, no `unsafe-inline`).

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The GOV.UK template's inline script: marks the body when JavaScript runs. Pages include it
/// verbatim; the Content-Security-Policy allows it by this exact text's hash.
pub const JS_ENABLED_SCRIPT: &str = "document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' govuk-frontend-supported' : '');";

/// The header carrying the correlation id, on requests (when a caller sets one) and responses.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// The id of one request, written to the audit trail with whatever it read or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorrelationId(pub Uuid);

/// The Content-Security-Policy of every page.
pub fn content_security_policy() -> String {
    let hash = base64::engine::general_purpose::STANDARD
        .encode(Sha256::digest(JS_ENABLED_SCRIPT.as_bytes()));
    format!(
        "default-src 'self'; script-src 'self' 'sha256-{hash}'; style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )
}

/// Middleware: a correlation id for the request (the caller's, when it is a UUID), and the
/// security headers on the response.
pub async fn headers(mut request: Request, next: Next) -> Response {
    let correlation = request
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok())
        .unwrap_or_else(Uuid::now_v7);
    request.extensions_mut().insert(CorrelationId(correlation));
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(
        h,
        HeaderName::from_static(CORRELATION_HEADER),
        &correlation.to_string(),
    );
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        &content_security_policy(),
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if is_asset {
        set(h, header::CACHE_CONTROL, "public, max-age=3600");
    } else {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_policy_allows_the_template_script_by_its_hash() {
        // The hash GOV.UK Frontend documents for this line of its 6.x template.
        assert!(super::content_security_policy()
            .contains("'sha256-GUQ5ad8JK5KmEWmROf3LZd9ge94daqNvd8xy9YS1iDw='"));
    }
}
