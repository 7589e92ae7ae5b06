//! Who may use the dashboard: the token, the host, the origin and CSRF token of changes, the
//! security headers.

use crate::support::{Served, TOKEN};

#[test]
fn without_the_token_every_page_is_refused() {
    let s = Served::new();
    for path in [
        "/",
        "/tasks",
        "/approvals",
        "/events",
        "/stats",
        "/live",
        "/metrics",
    ] {
        let a = s.raw(&format!("GET {path} HTTP/1.1"), "");
        assert_eq!(a.status, 401, "{path} without a token: {a:?}");
        assert!(a.body.contains("needs its token"), "{path}: {}", a.body);
    }
    let a = s.raw(
        &format!(
            "GET / HTTP/1.1\r\nCookie: maos_{}=ffffffffffffffffffffffffffffffff",
            s.port
        ),
        "",
    );
    assert_eq!(a.status, 401, "a wrong cookie is refused");
}

#[test]
fn the_token_in_the_address_becomes_a_cookie() {
    let s = Served::new();
    let a = s.raw(&format!("GET /?token={TOKEN} HTTP/1.1"), "");
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), Some("/"));
    let cookie = a.header("set-cookie").expect("a cookie");
    assert!(
        cookie.starts_with(&format!("maos_{}={TOKEN}", s.port)),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let wrong = s.raw("GET /?token=00000000000000000000000000000000 HTTP/1.1", "");
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
}

#[test]
fn every_answer_carries_the_security_headers() {
    let s = Served::new();
    for a in [
        s.get("/"),
        s.raw("GET / HTTP/1.1", ""),
        s.get("/no-such-page"),
    ] {
        let csp = a.header("content-security-policy").expect("CSP");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(a.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(a.header("x-frame-options"), Some("DENY"));
    }
}

#[test]
fn another_host_name_is_refused() {
    let s = Served::new();
    let a = s.raw(
        &format!(
            "GET / HTTP/1.1\r\nHost: attacker.example:{}\r\nCookie: maos_{}={TOKEN}",
            s.port, s.port
        ),
        "",
    );
    // The first Host line wins in hyper: the raw helper adds its own after ours, so ours is
    // the one read.
    assert_eq!(a.status, 403, "{a:?}");
}

#[test]
fn a_change_needs_the_origin_and_the_csrf_token() {
    let s = Served::new();
    let port = s.port;
    // No Origin, no Sec-Fetch-Site.
    let a = s.raw(
        &format!("POST /tasks/xxxx/cancel HTTP/1.1\r\nCookie: maos_{port}={TOKEN}\r\nContent-Type: application/x-www-form-urlencoded"),
        "csrf=fedcba9876543210fedcba9876543210",
    );
    assert_eq!(a.status, 403, "{a:?}");
    // Another site's Origin.
    let a = s.raw(
        &format!("POST /tasks/xxxx/cancel HTTP/1.1\r\nCookie: maos_{port}={TOKEN}\r\nOrigin: http://evil.example\r\nContent-Type: application/x-www-form-urlencoded"),
        "csrf=fedcba9876543210fedcba9876543210",
    );
    assert_eq!(a.status, 403, "{a:?}");
}
