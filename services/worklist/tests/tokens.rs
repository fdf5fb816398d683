//! Token verification against the development issuer's key set, served over HTTP: what a
//! forged, stale or misdirected token gets, and key rotation.

use std::sync::Arc;

use base64::Engine;
use continuity_worklist::dev_issuer::{DevIssuer, IssuerSettings, TEST_USERS};
use continuity_worklist::tokens::{TokenError, Verifier};

/// An issuer on a free loopback port, and a verifier of its tokens.
async fn issuer() -> (Arc<DevIssuer>, Verifier, tokio::net::TcpListener) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("http://localhost:{port}");
    let issuer = Arc::new(
        DevIssuer::new(IssuerSettings {
            http_addr: ([127, 0, 0, 1], port).into(),
            issuer_url: url.clone(),
            client_id: "continuity-worklist".into(),
            redirect_uri: "http://localhost:1/sign-in/callback".into(),
        })
        .unwrap(),
    );
    let verifier = Verifier::new(
        format!("{url}/.well-known/jwks.json"),
        url,
        "continuity-worklist".into(),
        reqwest::Client::new(),
    );
    (issuer, verifier, listener)
}

fn serve(issuer: Arc<DevIssuer>, listener: tokio::net::TcpListener) {
    tokio::spawn(async move { axum::serve(listener, issuer.router()).await });
}

fn b64(v: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn only_the_issuers_own_valid_tokens_for_this_client_are_accepted() {
    let (issuer, verifier, listener) = issuer().await;
    let kid = issuer.jwks()["keys"][0]["kid"].as_str().unwrap().to_owned();
    let public_x = issuer.jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
    serve(issuer.clone(), listener);
    let now = chrono::Utc::now().timestamp();
    let user = &TEST_USERS[0];

    let good = issuer.mint(user, now).unwrap();
    let claims = verifier.verify(&good).await.unwrap();
    assert_eq!(claims.user_name, user.user_name);
    assert_eq!(claims.organisation.as_deref(), Some(user.organisation));

    let with = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut c = issuer.claims(user, now);
        change(&mut c);
        issuer.sign(&c).unwrap()
    };
    let cases: Vec<(&str, String)> = vec![
        ("expired", with(&|c| c["exp"] = (now - 120).into())),
        ("not yet valid", with(&|c| c["nbf"] = (now + 600).into())),
        (
            "another issuer",
            with(&|c| c["iss"] = "https://evil.example".into()),
        ),
        (
            "another audience",
            with(&|c| c["aud"] = "another-client".into()),
        ),
        (
            "no expiry",
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        (
            "no user name",
            with(&|c| {
                c.as_object_mut().unwrap().remove("user_name");
            }),
        ),
    ];
    for (what, token) in cases {
        let e = verifier.verify(&token).await.unwrap_err();
        assert!(matches!(e, TokenError::Invalid(_)), "{what}: {e}");
    }

    // alg none, and HS256 "signed" with the public key: refused before any key is tried.
    let body = b64(&issuer.claims(user, now));
    let none = format!(
        "{}.{body}.",
        b64(&serde_json::json!({"alg": "none", "kid": kid}))
    );
    assert!(matches!(
        verifier.verify(&none).await,
        Err(TokenError::Algorithm | TokenError::Malformed)
    ));
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some(kid.clone()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &issuer.claims(user, now),
        &jsonwebtoken::EncodingKey::from_secret(public_x.as_bytes()),
    )
    .unwrap();
    assert!(matches!(
        verifier.verify(&hs).await,
        Err(TokenError::Algorithm)
    ));

    // A token signed by another key under the issuer's kid fails its signature; under a kid
    // the issuer does not publish it is unknown.
    let (other, _, _) = self::issuer().await;
    let mut forged = issuer.claims(user, now);
    forged["iss"] = issuer.claims(user, now)["iss"].clone();
    let foreign = other.sign(&forged).unwrap();
    assert!(matches!(
        verifier.verify(&foreign).await,
        Err(TokenError::UnknownKey)
    ));
    let tampered = {
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let mut c = issuer.claims(user, now);
        c["organisation"] = "PRV001".into();
        parts[1] = b64(&c);
        parts.join(".")
    };
    assert!(matches!(
        verifier.verify(&tampered).await,
        Err(TokenError::Invalid(_))
    ));
    assert!(matches!(
        verifier.verify("not-a-token").await,
        Err(TokenError::Malformed)
    ));
}

#[tokio::test]
async fn a_rotated_key_is_fetched_when_a_token_names_it() {
    // The verifier learns the first key; the issuer restarts on the same address with a new
    // key; a token under the new key is accepted after one fetch of the key set.
    let (first, verifier, listener) = issuer().await;
    let addr = listener.local_addr().unwrap();
    let now = chrono::Utc::now().timestamp();
    let server = tokio::spawn({
        let first = first.clone();
        async move { axum::serve(listener, first.router()).await }
    });
    verifier
        .verify(&first.mint(&TEST_USERS[0], now).unwrap())
        .await
        .unwrap();
    server.abort();
    let _ = server.await;
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let second = Arc::new(
        DevIssuer::new(IssuerSettings {
            http_addr: addr,
            issuer_url: format!("http://localhost:{}", addr.port()),
            client_id: "continuity-worklist".into(),
            redirect_uri: "http://localhost:1/sign-in/callback".into(),
        })
        .unwrap(),
    );
    serve(second.clone(), listener);
    // The key set is fetched at most once per interval (10 s), so the new key is refused
    // until the interval since the first fetch has passed, then accepted.
    let token = second.mint(&TEST_USERS[0], now).unwrap();
    let mut accepted = false;
    for _ in 0..600 {
        match verifier.verify(&token).await {
            Ok(_) => {
                accepted = true;
                break;
            }
            Err(TokenError::UnknownKey) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(accepted, "the rotated key was never fetched");
}
