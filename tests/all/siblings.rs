//! Issue 9 A2: what a sibling subdomain can do to a session whose name has no `__Host-`
//! prefix. A sibling (`evil.example.com`) that obtains its own authentic session (it logs in
//! as itself, `mallory`) can set that cookie for the parent domain. With a `Domain` attribute
//! the planted cookie has the same name, domain and path as the victim's, so the browser
//! *replaces* the victim's session with the attacker's; for a visitor without a session it is
//! simply the session (login CSRF). Only `__Host-` names (host-only, `Path=/`, Secure) are
//! out of a sibling's reach: a browser refuses a `__Host-` cookie that carries a Domain.
//!
//! The browser side is a small RFC 6265bis cookie store ([`Browser`]): cookies are keyed by
//! (name, domain, path), a Domain attribute must domain-match the setting host, and the
//! `__Host-`/`__Secure-` prefixes are enforced without regard to case. The server side is the
//! real middleware.

use actix_web::App;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header;
use actix_web::test as actix_test;
use sealed_session::{Algorithm, SessionMiddleware};

use crate::support::*;

/// A cookie as a browser stores it.
#[derive(Clone, Debug)]
struct Stored {
    name: String,
    value: String,
    /// The Domain attribute, or the setting host for a host-only cookie.
    domain: String,
    host_only: bool,
    path: String,
}

/// The parts of an RFC 6265bis cookie store this attack depends on.
#[derive(Default, Debug)]
struct Browser(Vec<Stored>);

impl Browser {
    /// Stores what `host` sets with `line`, as a browser would (or refuses it).
    fn set_cookie(&mut self, host: &str, line: &str) -> bool {
        let c = cookie::Cookie::parse(line.to_owned()).unwrap();
        let lower = c.name().to_ascii_lowercase();
        let path = c.path().unwrap_or("/").to_owned();
        let secure = c.secure() == Some(true);
        let (domain, host_only) = match c.domain() {
            Some(d) => {
                let d = d.trim_start_matches('.').to_ascii_lowercase();
                if host != d && !host.ends_with(&format!(".{d}")) {
                    return false; // not a domain of the setting host
                }
                (d, false)
            }
            None => (host.to_owned(), true),
        };
        if lower.starts_with("__secure-") && !secure {
            return false;
        }
        if lower.starts_with("__host-") && (!secure || !host_only || path != "/") {
            return false;
        }
        self.0
            .retain(|s| !(s.name == c.name() && s.domain == domain && s.path == path));
        if c.max_age() != Some(cookie::time::Duration::ZERO) {
            self.0.push(Stored {
                name: c.name().to_owned(),
                value: c.value().to_owned(),
                domain,
                host_only,
                path,
            });
        }
        true
    }

    /// The `Cookie` header for a request to `host` at `/`, longer paths first, then oldest.
    fn header(&self, host: &str) -> Option<String> {
        let mut sent: Vec<&Stored> = self
            .0
            .iter()
            .filter(|s| {
                if s.host_only {
                    s.domain == host
                } else {
                    host == s.domain || host.ends_with(&format!(".{}", s.domain))
                }
            })
            .collect();
        sent.sort_by_key(|s| std::cmp::Reverse(s.path.len()));
        let pairs: Vec<String> = sent
            .iter()
            .map(|s| format!("{}={}", s.name, s.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }
}

const APP: &str = "app.example.com";
const SIBLING: &str = "evil.example.com";

/// GET `uri` on the app as `browser` would send it; stores the response's cookies.
async fn visit<S, B>(app: &S, browser: &mut Browser, uri: &str) -> (u16, String)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let mut req = actix_test::TestRequest::get().uri(uri);
    if let Some(cookie) = browser.header(APP) {
        req = req.insert_header((header::COOKIE, cookie));
    }
    let res = actix_test::call_service(app, req.to_request()).await;
    for line in res.headers().get_all(header::SET_COOKIE) {
        assert!(browser.set_cookie(APP, line.to_str().unwrap()), "{line:?}");
    }
    let status = res.status().as_u16();
    let body = actix_test::read_body(res).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The app under `name` (and `domain`); the sibling's `Set-Cookie` lines carrying Mallory's
/// own authentic session, re-scoped to the parent domain.
async fn scenario(
    name: &str,
    domain: Option<&str>,
) -> (
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    >,
    Vec<String>,
) {
    let clock = TestClock::new();
    let mw = on_test_clock(
        SessionMiddleware::builder(ring(Algorithm::default())),
        &clock,
    )
    .cookie_name(name.to_owned())
    .cookie_domain(domain.map(str::to_owned))
    .build()
    .unwrap();
    let app = actix_test::init_service(App::new().wrap(mw).configure(routes)).await;
    // Mallory logs in as herself: an authentic session, sealed by the app's own key.
    let mut mallory = Browser::default();
    assert_eq!(
        visit(&app, &mut mallory, "/login?user=mallory").await.0,
        200
    );
    let planted = mallory
        .0
        .iter()
        .map(|s| format!("{}={}; Domain=example.com; Path=/; Secure", s.name, s.value))
        .collect();
    (app, planted)
}

/// With a Domain attribute (`__Secure-` name, as the README suggested for sharing a session
/// across subdomains) the sibling overwrites a logged-in victim's session with its own, and
/// logs a logged-out visitor in as itself.
#[actix_web::test]
async fn a2_sibling_overwrites_a_domain_session_with_its_own_authentic_one() {
    let (app, planted) = scenario("__Secure-s", Some("example.com")).await;
    let mut victim = Browser::default();
    assert_eq!(visit(&app, &mut victim, "/login?user=alice").await.0, 200);
    assert_eq!(
        visit(&app, &mut victim, "/whoami").await,
        (200, "alice".into())
    );
    for line in &planted {
        assert!(
            victim.set_cookie(SIBLING, line),
            "the browser accepts {line}"
        );
    }
    // Same name, domain and path: Alice's cookie was replaced, and the app accepts Mallory's.
    assert_eq!(victim.0.len(), 1);
    assert_eq!(
        visit(&app, &mut victim, "/whoami").await,
        (200, "mallory".into())
    );

    let mut visitor = Browser::default();
    for line in &planted {
        assert!(visitor.set_cookie(SIBLING, line));
    }
    assert_eq!(
        visit(&app, &mut visitor, "/whoami").await,
        (200, "mallory".into())
    );
}

/// Host-only, but a name without `__Host-`: the sibling's parent-domain cookie cannot replace
/// the victim's (another domain), so a logged-in victim sees two authentic sessions and is
/// logged out (ambiguous); a logged-out visitor is logged in as the sibling (login CSRF).
#[actix_web::test]
async fn a2_sibling_plants_a_session_for_a_logged_out_visitor_without_host_prefix() {
    for name in ["s", "__Secure-s"] {
        let (app, planted) = scenario(name, None).await;
        let mut visitor = Browser::default();
        for line in &planted {
            assert!(visitor.set_cookie(SIBLING, line), "{name}");
        }
        let got = visit(&app, &mut visitor, "/whoami").await;
        assert_eq!(got, (200, "mallory".into()), "{name}: login CSRF");

        let mut victim = Browser::default();
        assert_eq!(visit(&app, &mut victim, "/login?user=alice").await.0, 200);
        for line in &planted {
            assert!(victim.set_cookie(SIBLING, line), "{name}");
        }
        assert_eq!(
            victim.0.len(),
            2,
            "{name}: host-only and parent-domain copies"
        );
        assert_eq!(visit(&app, &mut victim, "/whoami").await.0, 401, "{name}");
    }
}

/// The control: under the default `__Host-` name the browser refuses the sibling's cookie
/// (it carries a Domain), whatever the case of the prefix, so the victim keeps their own
/// session and a visitor gets none.
#[actix_web::test]
async fn a2_host_prefix_keeps_the_sibling_out() {
    for name in ["__Host-s", "__host-s"] {
        let (app, planted) = scenario(name, None).await;
        let mut victim = Browser::default();
        assert_eq!(visit(&app, &mut victim, "/login?user=alice").await.0, 200);
        for line in &planted {
            assert!(!victim.set_cookie(SIBLING, line), "{name}: {line}");
            let host_only = line.replace("; Domain=example.com", "");
            // Without the Domain it would be a cookie for the sibling's own host.
            assert!(victim.set_cookie(SIBLING, &host_only), "{name}");
        }
        assert_eq!(
            visit(&app, &mut victim, "/whoami").await,
            (200, "alice".into())
        );
        let mut visitor = Browser::default();
        for line in &planted {
            assert!(!visitor.set_cookie(SIBLING, line));
        }
        assert_eq!(visit(&app, &mut visitor, "/whoami").await.0, 401, "{name}");
    }
}
