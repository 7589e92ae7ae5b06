//! Who may use the dashboard: the token (in the URL once, then in a cookie), the host a request
//! names, the origin and CSRF token of every form, and the security headers of every response.

use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;

use crate::ctx::Ctx;
use crate::html;

/// A random secret (the dashboard's token, its CSRF token): hex, compared in constant time,
/// never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// Why a text is not a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a secret is 32 to 128 hexadecimal digits; this one has {0} characters")]
    Length(usize),
    #[error("a secret is hexadecimal digits only")]
    NotHex,
}

impl Secret {
    /// The shortest secret accepted: 128 bits.
    pub const MIN_DIGITS: usize = 32;
    /// The longest.
    pub const MAX_DIGITS: usize = 128;

    /// A secret from its hex text (as stored in the data directory).
    pub fn parse(text: &str) -> Result<Secret, SecretError> {
        let text = text.trim();
        if !(Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&text.len()) {
            return Err(SecretError::Length(text.chars().count()));
        }
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SecretError::NotHex);
        }
        Ok(Secret(text.to_ascii_lowercase()))
    }

    /// A secret from random bytes (at least 16).
    pub fn from_random(bytes: &[u8]) -> Result<Secret, SecretError> {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Secret::parse(&hex)
    }

    /// The secret's text, for the one place that must show it (the URL `maos ui` prints, the
    /// forms' hidden field, the file it is kept in).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this secret, in time that does not depend on where they differ.
    pub fn matches(&self, given: &str) -> bool {
        maos_application::same_secret(&self.0, given)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The Content-Security-Policy of every response: scripts, styles and connections only from
/// the dashboard itself, no inline script or style, no plugin, no framing, forms post only here.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The largest form accepted (a rejection reason, feedback, a plan's text).
pub(crate) const MAX_FORM: usize = 256 * 1024;

/// Every request passes here: static assets are public; everything else needs the token (which a
/// first visit brings in `?token=` and trades for a cookie), a host name the dashboard answers
/// to, and, for anything but GET and HEAD, the dashboard's own origin.
pub(crate) async fn guard(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    if ctx.config().loopback && !loopback_host(headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "wrong host",
            "This dashboard answers only to 127.0.0.1, localhost or [::1]. Open the address \
             `maos ui` printed.",
        );
    }
    let path = req.uri().path();
    if path.starts_with("/assets/") {
        return next.run(req).await;
    }
    if let Some(given) = query_token(req.uri().query()) {
        if !ctx.config().token.matches(&given) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "wrong token",
                "The token in this address is not this dashboard's. Run `maos ui` on the machine \
                 that serves it for the current address.",
            );
        }
        if req.method() == Method::GET {
            // Trade the token for a cookie, and take it out of the address bar and history.
            let to = without_token(req.uri());
            let mut response = Redirect::to(&to).into_response();
            if let Ok(cookie) = HeaderValue::from_str(&ctx.cookie(&given)) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            return response;
        }
    } else if !cookie_token(headers, &ctx.cookie_name())
        .is_some_and(|t| ctx.config().token.matches(&t))
    {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "token needed",
            "This dashboard needs its token. Run `maos ui` on the machine that serves it: it \
             prints the address to open, token included.",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD && !same_origin(headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "cross-site request",
            "A change must come from one of the dashboard's own pages.",
        );
    }
    next.run(req).await
}

/// Adds the security headers to every response.
pub(crate) async fn headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The token must never leave in a Referer header.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn refuse(status: StatusCode, title: &str, why: &str) -> Response {
    let mut response = html::refusal(title, why);
    *response.status_mut() = status;
    response
}

/// The host the request names, without its port.
fn host(headers: &HeaderMap) -> Option<&str> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    Some(match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    })
}

fn loopback_host(headers: &HeaderMap) -> bool {
    matches!(
        host(headers).map(str::to_ascii_lowercase).as_deref(),
        Some("127.0.0.1" | "localhost" | "::1")
    )
}

/// A change must come from our own pages: the browser's `Origin` names our host (and port), or,
/// where a browser sends no `Origin` or an opaque one, `Sec-Fetch-Site` says `same-origin`.
/// Neither: refused. (Under `Referrer-Policy: no-referrer`, which every page has, Chromium sends
/// `Origin: null` with a form's POST even from our own page.)
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    if let Some(origin) = headers
        .get(header::ORIGIN)
        .filter(|o| o.as_bytes() != b"null")
    {
        return origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix("http://"))
            .is_some_and(|o| o.eq_ignore_ascii_case(host));
    }
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "same-origin")
}

fn query_token(query: Option<&str>) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
}

/// The same address without its `token` parameter.
fn without_token(uri: &axum::http::Uri) -> String {
    let rest: Vec<(String, String)> = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != "token")
        .collect();
    let query = serde_urlencoded::to_string(&rest).unwrap_or_default();
    if query.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{query}", uri.path())
    }
}

fn cookie_token(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A form posted by one of the dashboard's pages: its `csrf` field must be the dashboard's CSRF
/// token; the rest is `T`.
#[derive(Debug)]
pub(crate) struct Posted<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<Ctx> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request<Body>, ctx: &Ctx) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(req.into_body(), MAX_FORM)
            .await
            .map_err(|_| {
                refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "form too large",
                    "A form holds at most 256 KiB.",
                )
            })?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| refuse(StatusCode::BAD_REQUEST, "unreadable form", &e.to_string()))?;
        let csrf = pairs.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v);
        if !csrf.is_some_and(|c| ctx.config().csrf.matches(c)) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token",
                "A change must be posted from one of the dashboard's own pages: reload the page \
                 and try again.",
            ));
        }
        serde_urlencoded::from_bytes(&bytes)
            .map(Posted)
            .map_err(|e| refuse(StatusCode::BAD_REQUEST, "unreadable form", &e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_parse_and_compare() {
        let s = Secret::from_random(&[0xab; 16]).expect("16 bytes");
        assert_eq!(s.expose(), "ab".repeat(16));
        assert!(s.matches(&"ab".repeat(16)));
        assert!(!s.matches(&"ab".repeat(15)));
        assert!(!s.matches(&format!("{}ac", "ab".repeat(15))));
        assert_eq!(Secret::parse("abc"), Err(SecretError::Length(3)));
        assert_eq!(Secret::parse(&"zz".repeat(16)), Err(SecretError::NotHex));
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }

    #[test]
    fn the_token_leaves_the_address() {
        let uri: axum::http::Uri = "/tasks?token=abc&state=running".parse().expect("uri");
        assert_eq!(without_token(&uri), "/tasks?state=running");
        let uri: axum::http::Uri = "/?token=abc".parse().expect("uri");
        assert_eq!(without_token(&uri), "/");
    }

    #[test]
    fn hosts_and_origins() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8787"));
        assert!(loopback_host(&h));
        assert!(!same_origin(&h), "no Origin and no Sec-Fetch-Site: refused");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8787"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        // An opaque origin (a form posted under `no-referrer`) is judged by Sec-Fetch-Site.
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(
            !same_origin(&h),
            "a foreign origin wins over Sec-Fetch-Site"
        );
        h.insert(header::HOST, HeaderValue::from_static("evil.example:8787"));
        assert!(!loopback_host(&h));
        h.insert(header::HOST, HeaderValue::from_static("[::1]:8787"));
        assert!(loopback_host(&h));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; maos_8787=secret; b=2"),
        );
        assert_eq!(cookie_token(&h, "maos_8787").as_deref(), Some("secret"));
        assert_eq!(cookie_token(&h, "maos_9999"), None);
    }
}
