//! Issue 9, A1 and A7, through the real actix service.
//!
//! A1, cookie tossing through the duplicate cap: a sibling subdomain can plant cookies for the
//! parent domain with a longer `Path` (sent first) or as nameless `=name=value` cookies (sent
//! as `name=value`). When the decoder kept the first 4 distinct values of a chunk name and
//! dropped the rest, 3 junk values and the attacker's authentic session ahead of the victim's
//! made the attacker's session the only candidate: the victim was silently logged in as the
//! attacker. Now more distinct values than the cap means no session (`ambiguous`).
//!
//! A7, purpose label: two apps sharing a keyring and a cookie name refuse each other's
//! cookies once they set different purposes.

use std::sync::Arc;

use actix_web::App;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header;
use actix_web::test as actix_test;
use sealed_session::{Algorithm, SessionMiddlewareBuilder, SessionStats};

use crate::support::*;

/// The parent-domain cookie name (a `__Host-` cookie cannot be tossed by a sibling, but any
/// name used with a `Domain` can).
const NAME: &str = "__Secure-s";

struct Node<S> {
    app: S,
    stats: Arc<SessionStats>,
}

async fn node(
    builder: SessionMiddlewareBuilder,
) -> Node<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    >,
> {
    let mw = builder.build().unwrap();
    let stats = mw.stats();
    let app = actix_test::init_service(App::new().wrap(mw).configure(routes)).await;
    Node { app, stats }
}

/// A node for example.com and all its subdomains, 16 KiB total budget, no compression.
fn parent_domain(clock: &TestClock) -> SessionMiddlewareBuilder {
    builder(ring(Algorithm::default()), clock)
        .cookie_name(NAME.into())
        .cookie_domain(Some("example.com".into()))
        .total_budget(16 * 1024)
        .compression_threshold(None)
}

fn chunk_name(i: usize) -> String {
    if i == 0 {
        NAME.to_owned()
    } else {
        format!("{NAME}.{i}")
    }
}

/// The chunk values of a jar, in index order.
fn chunks(jar: &Jar) -> Vec<String> {
    (0..)
        .map_while(|i| jar.0.get(&chunk_name(i)).cloned())
        .collect()
}

/// `/whoami` with the raw `cookie` header: status, body, and whether a `Set-Cookie` came back.
async fn whoami<S, B>(app: &S, cookie: &str) -> (u16, String, bool)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let req = actix_test::TestRequest::get()
        .uri("/whoami")
        .insert_header((header::COOKIE, cookie))
        .to_request();
    let res = actix_test::call_service(app, req).await;
    let set = res.headers().contains_key(header::SET_COOKIE);
    let status = res.status().as_u16();
    let body = actix_test::read_body(res).await;
    (status, String::from_utf8_lossy(&body).into_owned(), set)
}

/// A logged-in browser of `node` as `user` holding `bytes` random characters.
async fn login<S, B>(app: &S, user: &str, bytes: usize) -> Jar
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let mut jar = Jar::default();
    assert_eq!(
        get(app, &mut jar, &format!("/login?user={user}")).await.0,
        200
    );
    if bytes > 0 {
        assert_eq!(
            get(app, &mut jar, &format!("/set?bytes={bytes}")).await.0,
            200
        );
    }
    jar
}

fn header_of(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A1: 5 to 64 values for chunk 0 of a one-chunk session, the attacker's authentic value at
/// every position among them and the victim's last (a browser sends the planted, longer-Path
/// cookies first): never the attacker's session, never the victim's either (`ambiguous`).
#[actix_web::test]
async fn a1_five_to_64_values_of_chunk_0_are_ambiguous_at_every_position() {
    let clock = TestClock::new();
    let n = node(parent_domain(&clock)).await;
    let victim = chunks(&login(&n.app, "alice", 0).await);
    let attacker = chunks(&login(&n.app, "mallory", 0).await);
    assert_eq!((victim.len(), attacker.len()), (1, 1));
    let mut expected = 0;
    for count in 5..=64 {
        for position in 0..count - 1 {
            let mut pairs: Vec<(String, String)> = (0..count - 1)
                .map(|j| {
                    let value = if j == position {
                        attacker[0].clone()
                    } else {
                        format!("1.junk{j}")
                    };
                    (chunk_name(0), value)
                })
                .collect();
            pairs.push((chunk_name(0), victim[0].clone()));
            let ctx = format!("{count} values, attacker at {position}");
            let (status, body, set) = whoami(&n.app, &header_of(&pairs)).await;
            assert_eq!((status, body.as_str(), set), (401, "", false), "{ctx}");
            expected += 1;
            assert_eq!(rejected(&n.stats, "ambiguous"), expected, "{ctx}");
        }
    }
    // The victim alone still opens.
    let (status, body, _) = whoami(&n.app, &header_of(&[(chunk_name(0), victim[0].clone())])).await;
    assert_eq!((status, body.as_str()), (200, "alice"));
}

/// A1 at a middle chunk: the victim's three-chunk session, with 5 to 62 distinct values of
/// chunk 1 (the attacker's own chunk 1 at every position, junk elsewhere, the victim's last),
/// is ambiguous. 62 values and the two other chunks make the 64 cookies the decoder reads.
#[actix_web::test]
async fn a1_five_to_62_values_of_a_middle_chunk_are_ambiguous_at_every_position() {
    let clock = TestClock::new();
    let n = node(parent_domain(&clock)).await;
    let victim = chunks(&login(&n.app, "alice", 7000).await);
    let attacker = chunks(&login(&n.app, "mallory", 7000).await);
    assert_eq!((victim.len(), attacker.len()), (3, 3));
    let mut expected = 0;
    for count in 5..=62 {
        for position in 0..count - 1 {
            let mut pairs = vec![(chunk_name(0), victim[0].clone())];
            pairs.extend((0..count - 1).map(|j| {
                let value = if j == position {
                    attacker[1].clone()
                } else {
                    format!("junk{j}")
                };
                (chunk_name(1), value)
            }));
            pairs.push((chunk_name(1), victim[1].clone()));
            pairs.push((chunk_name(2), victim[2].clone()));
            let ctx = format!("{count} values of .1, attacker at {position}");
            let (status, _, set) = whoami(&n.app, &header_of(&pairs)).await;
            assert_eq!((status, set), (401, false), "{ctx}");
            expected += 1;
            assert_eq!(rejected(&n.stats, "ambiguous"), expected, "{ctx}");
        }
    }
    // 63 values of chunk 1 and the two other chunks: 65 cookies, refused as too many first.
    let mut pairs = vec![(chunk_name(0), victim[0].clone())];
    pairs.extend((0..63).map(|j| (chunk_name(1), format!("junk{j}"))));
    pairs.push((chunk_name(2), victim[2].clone()));
    assert_eq!(whoami(&n.app, &header_of(&pairs)).await.0, 401);
    assert_eq!(rejected(&n.stats, "chunk.too_many"), 1);
}

/// One cookie as a browser stores it: what it sends, its Path and when it was created.
struct Stored {
    /// `name=value` as it appears in the `Cookie` header (a nameless cookie `=n=v` is sent
    /// as `n=v`).
    sent: String,
    path: &'static str,
    created: usize,
}

/// The `Cookie` header a browser sends: longer paths first, then older cookies first
/// (RFC 6265 §5.4 step 2).
fn browser_header(mut jar: Vec<Stored>) -> String {
    jar.sort_by(|a, b| {
        b.path
            .len()
            .cmp(&a.path.len())
            .then(a.created.cmp(&b.created))
    });
    jar.iter()
        .map(|c| c.sent.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A1, the attack as a browser delivers it: the victim logged in first (`Path=/`), then a
/// sibling subdomain plants, for `Domain=example.com`, junk values and the attacker's own
/// authentic session with `Path=/whoami`, or as nameless cookies, in every order. With the
/// old truncation the attacker's session was the only candidate kept; now it is ambiguous
/// whenever more than 4 distinct values arrive, and with 4 or fewer both authentic sessions
/// are tried (ambiguous too).
#[actix_web::test]
async fn a1_browser_ordering_longer_path_and_nameless_pairs_never_log_in_as_the_attacker() {
    let clock = TestClock::new();
    let n = node(parent_domain(&clock)).await;
    for bytes in [0, 7000] {
        let victim = chunks(&login(&n.app, "alice", bytes).await);
        let attacker = chunks(&login(&n.app, "mallory", bytes).await);
        for junk in 0..=6 {
            for attacker_at in 0..=junk {
                for nameless in [false, true] {
                    let mut jar: Vec<Stored> = victim
                        .iter()
                        .enumerate()
                        .map(|(i, v)| Stored {
                            sent: format!("{}={v}", chunk_name(i)),
                            path: "/",
                            created: 0,
                        })
                        .collect();
                    // Junk and the attacker's chunk 0, in creation order; the attacker's
                    // other chunks (if any) after them.
                    let mut created = 1;
                    for j in 0..=junk {
                        let value = if j == attacker_at {
                            attacker[0].clone()
                        } else {
                            format!("{}.junk{j}", victim.len())
                        };
                        jar.push(Stored {
                            sent: format!("{}={value}", chunk_name(0)),
                            // Nameless cookies are set with the default path of the page
                            // that set them; here `/whoami` as well, or `/` for the nameless.
                            path: if nameless { "/" } else { "/whoami" },
                            created,
                        });
                        created += 1;
                    }
                    for (i, v) in attacker.iter().enumerate().skip(1) {
                        jar.push(Stored {
                            sent: format!("{}={v}", chunk_name(i)),
                            path: "/whoami",
                            created,
                        });
                    }
                    let cookie = browser_header(jar);
                    let ctx = format!(
                        "{bytes} bytes, {junk} junk, attacker at {attacker_at}, nameless {nameless}"
                    );
                    let (status, body, set) = whoami(&n.app, &cookie).await;
                    assert_ne!(body, "mallory", "{ctx}: logged in as the attacker");
                    assert_eq!((status, set), (401, false), "{ctx}");
                }
            }
        }
    }
    assert_eq!(
        n.stats.rejected_total(),
        rejected(&n.stats, "ambiguous") + rejected(&n.stats, "chunk.candidates")
    );
}

/// A7: two apps sharing one keyring and one cookie name, with different purpose labels (or
/// one without), refuse each other's cookies (`aead.tag`); each opens its own.
#[actix_web::test]
async fn a7_apps_with_different_purposes_refuse_each_others_cookies() {
    let clock = TestClock::new();
    let keyring = ring(Algorithm::default());
    let purposes = [None, Some("billing"), Some("shop")];
    let mut nodes = Vec::new();
    for p in purposes {
        let b = builder(keyring.clone(), &clock).purpose(p.map(str::to_owned));
        nodes.push(node(b).await);
    }
    for (i, from) in nodes.iter().enumerate() {
        for bytes in [0, 3200] {
            let jar = login(&from.app, "alice", bytes).await;
            for (j, to) in nodes.iter().enumerate() {
                let ctx = format!("{:?} → {:?}, {bytes} bytes", purposes[i], purposes[j]);
                let before = rejected(&to.stats, "aead.tag");
                let (status, body, _) = whoami(&to.app, &jar.header()).await;
                if i == j {
                    assert_eq!((status, body.as_str()), (200, "alice"), "{ctx}");
                } else {
                    assert_eq!(status, 401, "{ctx}");
                    assert_eq!(rejected(&to.stats, "aead.tag"), before + 1, "{ctx}");
                }
            }
        }
    }
}

/// A7: a purpose label must be 1–200 bytes.
#[actix_web::test]
async fn a7_empty_or_overlong_purpose_is_refused_at_build() {
    let clock = TestClock::new();
    for bad in [String::new(), "p".repeat(201)] {
        let b = builder(ring(Algorithm::default()), &clock).purpose(Some(bad));
        assert!(b.build().is_err());
    }
    let b = builder(ring(Algorithm::default()), &clock).purpose(Some("p".repeat(200)));
    assert!(b.build().is_ok());
}
