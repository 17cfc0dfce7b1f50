//! Issue 10 §2, values that cannot be misread: through the real middleware, a value written
//! with one type and read with another is `Err` (the handler sees "unreadable"), never a
//! wrong value. Each test first shows the read with the written type succeeds, so the check
//! cannot pass by failing everything. Postcard alone gets each of these wrong (docs/FORMAT.md
//! §6.1; `legacy_entries_read_unchecked_as_before` shows it on an old cookie).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, test, web};
use sealed_session::{Codec, Session, SessionConfig, SessionState};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::{ByteBuf, Bytes};
use tracing_subscriber::layer::SubscriberExt;

use crate::support::*;

/// What `get::<R>` returned in the handler: `Ok(value)`, `Ok(None)` as `Absent`, `Err`.
#[derive(Debug, PartialEq)]
enum Read<R> {
    Value(R),
    Absent,
    Unreadable,
}

type Slot<R> = Arc<Mutex<Option<Read<R>>>>;

/// An app whose `/write` inserts `written` under `"v"` and whose `/read` reads `"v"` as `R`
/// into the returned slot.
async fn app_for<W, R>(
    written: W,
    clock: &TestClock,
) -> (
    impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    >,
    Slot<R>,
)
where
    W: Serialize + Clone + 'static,
    R: DeserializeOwned + Send + 'static,
{
    let slot: Slot<R> = Arc::new(Mutex::new(None));
    let out = Arc::clone(&slot);
    let app = test::init_service(
        App::new()
            .wrap(builder(ring(Default::default()), clock).build().unwrap())
            .route(
                "/write",
                web::get().to(move |s: Session| {
                    let w = written.clone();
                    async move {
                        s.insert("v", w).unwrap();
                        s.insert("other", 7u8).unwrap();
                        HttpResponse::Ok().finish()
                    }
                }),
            )
            .route(
                "/read",
                web::get().to(move |s: Session| {
                    let out = Arc::clone(&out);
                    async move {
                        let read = match s.get::<R>("v") {
                            Ok(Some(v)) => Read::Value(v),
                            Ok(None) => Read::Absent,
                            Err(_) => Read::Unreadable,
                        };
                        *out.lock().unwrap() = Some(read);
                        // The rest of the session is untouched by the failed read.
                        let other = s.get::<u8>("other").ok().flatten();
                        HttpResponse::Ok().body(format!("{other:?}"))
                    }
                }),
            ),
    )
    .await;
    (app, slot)
}

/// Writes `written` through the middleware, then reads it back as `R` on the next request.
async fn write_then_read<W, R>(written: W) -> Read<R>
where
    W: Serialize + Clone + 'static,
    R: DeserializeOwned + Send + 'static,
{
    let clock = TestClock::new();
    let (app, slot) = app_for::<W, R>(written, &clock).await;
    let mut jar = Jar::default();
    let (status, _, set) = get(&app, &mut jar, "/write").await;
    assert_eq!((status, set.len()), (200, 1));
    let (status, body, set) = get(&app, &mut jar, "/read").await;
    assert_eq!((status, body.as_str()), (200, "Some(7)"));
    assert!(set.is_empty(), "a failed read changes nothing");
    slot.lock().unwrap().take().expect("the handler ran")
}

/// `written` reads back as itself, and as each of the other types as `Unreadable`.
macro_rules! assert_misreads {
    ($written:expr => $same:ty; $($other:ty),+ $(,)?) => {{
        let w = $written;
        assert_eq!(
            write_then_read::<_, $same>(w.clone()).await,
            Read::Value(w.clone()),
            "{} as itself",
            stringify!($written)
        );
        $(
            assert_eq!(
                write_then_read::<_, $other>(w.clone()).await,
                Read::Unreadable,
                "{} read as {}",
                stringify!($written),
                stringify!($other)
            );
        )+
    }};
}

#[actix_web::test]
async fn s2_integer_width_and_signedness() {
    // Today's postcard answers: 200, 1, -4, 1, … (docs/FORMAT.md §6.1).
    assert_misreads!(100i32 => i32; usize, u32, i64, u64, i16, i8, u8, i128, isize, f32, bool, char);
    assert_misreads!(-1i32 => i32; u32, u64, i64, usize);
    assert_misreads!(7u32 => u32; i64, i32, u64, u16, u8, usize, f32);
    assert_misreads!(u64::MAX => u64; i64, u128, u32, f64);
    // `usize` is serialized as `u64`: one data model, the right value.
    assert_eq!(
        write_then_read::<_, usize>(u64::MAX).await,
        Read::Value(usize::MAX)
    );
    assert_misreads!(1u8 => u8; bool, i8, u16, char);
    assert_misreads!(true => bool; u8, i8);
    assert_misreads!(1.5f32 => f32; f64, u32, i32);
    assert_misreads!('x' => char; String, u32, u8);
}

#[actix_web::test]
async fn s2_string_bytes_and_byte_slices() {
    assert_misreads!(String::from("ab") => String; Vec<u8>, ByteBuf, Vec<char>, char);
    assert_misreads!(vec![97u8, 98] => Vec<u8>; String, ByteBuf, VecDeque<i8>);
    assert_misreads!(ByteBuf::from(b"ab".to_vec()) => ByteBuf; String, Vec<u8>);
    // A borrowed `&[u8]` written as bytes (serde_bytes) reads back as an owned byte buffer
    // (the same data model) and as nothing else.
    let bytes: &'static Bytes = Bytes::new(b"ab");
    assert_eq!(
        write_then_read::<_, ByteBuf>(bytes).await,
        Read::Value(ByteBuf::from(b"ab".to_vec()))
    );
    assert_eq!(write_then_read::<_, String>(bytes).await, Read::Unreadable);
    assert_eq!(write_then_read::<_, Vec<u8>>(bytes).await, Read::Unreadable);
    // Owned and borrowed strings are one data model.
    assert_eq!(
        write_then_read::<_, Box<str>>("ab").await,
        Read::Value(Box::from("ab"))
    );
}

#[actix_web::test]
async fn s2_option() {
    assert_misreads!(Some(5u32) => Option<u32>; u32, Option<u64>, Option<i32>, Vec<u32>, bool);
    assert_misreads!(5u32 => u32; Option<u32>, Option<u8>);
    // Postcard reads `None` (one 0x00 byte) as `0u32` or `false`.
    assert_misreads!(None::<u32> => Option<u32>; u32, u8, bool, Vec<u32>, String);
    assert_misreads!(Some(Some(1u8)) => Option<Option<u8>>; Option<u8>, Option<u16>);
    // A `None` carries no element type: it reads as `None` of any option (the right value).
    assert_eq!(
        write_then_read::<_, Option<String>>(None::<u32>).await,
        Read::Value(None)
    );
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Pair {
    a: u32,
    b: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct PairTuple(u32, String);

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Wrapper(u32);

#[actix_web::test]
async fn s2_tuples_vs_structs() {
    let pair = Pair {
        a: 1,
        b: "x".into(),
    };
    assert_misreads!(pair => Pair; (u32, String), PairTuple, Vec<String>);
    assert_misreads!((1u32, String::from("x")) => (u32, String); Pair, PairTuple, (u32, String, ()));
    assert_misreads!(PairTuple(1, "x".into()) => PairTuple; Pair, (u32, String));
    assert_misreads!(Wrapper(3) => Wrapper; u32, (u32,), Option<u32>);
    assert_misreads!(() => (); Option<()>, Wrapper);
    // serde's data model makes an array a tuple: these are the same model and read back.
    assert_eq!(
        write_then_read::<_, (u32, u32)>([1u32, 2]).await,
        Read::Value((1, 2))
    );
}

mod v1 {
    use super::*;
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub struct Account {
        pub id: u32,
        pub level: u32,
    }
}

/// `Account` with its fields swapped.
mod reordered {
    use super::*;
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub struct Account {
        pub level: u32,
        pub id: u32,
    }
}

/// `Account` with `level` renamed.
mod renamed {
    use super::*;
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub struct Account {
        pub id: u32,
        pub rank: u32,
    }
}

/// `Account` with a field added at the end.
mod added {
    use super::*;
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub struct Account {
        pub id: u32,
        pub level: u32,
        pub admin: bool,
    }
}

/// `Account` without `level`.
mod removed {
    use super::*;
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub struct Account {
        pub id: u32,
    }
}

/// `Account` renamed as a type: the name is part of the model; `#[serde(rename)]` keeps it.
mod retyped {
    use super::*;
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub struct User {
        pub id: u32,
        pub level: u32,
    }
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[serde(rename = "Account")]
    pub struct UserKeepingTheName {
        pub id: u32,
        pub level: u32,
    }
}

#[actix_web::test]
async fn s2_struct_field_names_and_order() {
    let account = v1::Account { id: 1, level: 2 };
    assert_misreads!(account.clone() => v1::Account;
        reordered::Account, renamed::Account, added::Account, removed::Account, retyped::User);
    // Inside a container, where postcard has no trailing bytes to notice a removed field with:
    let accounts = vec![account.clone(), v1::Account { id: 3, level: 4 }];
    assert_misreads!(accounts => Vec<v1::Account>;
        Vec<reordered::Account>, Vec<renamed::Account>, Vec<removed::Account>,
        Vec<added::Account>, Vec<(u32, u32)>);
    assert_eq!(
        write_then_read::<_, retyped::UserKeepingTheName>(account).await,
        Read::Value(retyped::UserKeepingTheName { id: 1, level: 2 })
    );
}

mod e1 {
    use super::*;
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub enum Role {
        Guest,
        Member(u32),
        Admin { since: u32 },
    }
}

/// Every variant at another index.
mod e_reordered {
    use super::*;
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub enum Role {
        Admin { since: u32 },
        Guest,
        Member(u32),
    }
}

/// Every variant renamed, shapes and indices kept.
mod e_renamed {
    use super::*;
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub enum Role {
        Visitor,
        Subscriber(u32),
        Owner { since: u32 },
    }
}

mod e_removed {
    use super::*;
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub enum Role {
        Member(u32),
        Admin { since: u32 },
    }
}

/// A variant added at the end: indices and names of the others unchanged.
mod e_added {
    use super::*;
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub enum Role {
        Guest,
        Member(u32),
        Admin { since: u32 },
        Banned,
    }
}

/// The same variants with other shapes.
mod e_reshaped {
    use super::*;
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub enum Role {
        Guest(u32),
        Member(i32),
        Admin(u32),
    }
}

#[actix_web::test]
async fn s2_enum_variant_names_and_order() {
    for role in [
        e1::Role::Guest,
        e1::Role::Member(5),
        e1::Role::Admin { since: 9 },
    ] {
        assert_misreads!(role.clone() => e1::Role;
            e_reordered::Role, e_renamed::Role, e_removed::Role, e_reshaped::Role, u32);
    }
    // Adding a variant at the end keeps every written value readable, with its value.
    assert_eq!(
        write_then_read::<_, e_added::Role>(e1::Role::Member(5)).await,
        Read::Value(e_added::Role::Member(5))
    );
    assert_eq!(
        write_then_read::<_, e_added::Role>(e1::Role::Admin { since: 9 }).await,
        Read::Value(e_added::Role::Admin { since: 9 })
    );
    // `Option` and `Result` are enums too.
    assert_misreads!(Ok::<u8, u8>(1) => Result<u8, u8>; Result<i8, u8>, Result<u16, u8>, Option<u8>, (bool, u8));
}

#[actix_web::test]
async fn s2_nested_containers() {
    assert_misreads!(vec![vec![1u8, 2]] => Vec<Vec<u8>>; Vec<String>, Vec<ByteBuf>, Vec<Vec<i8>>);
    let map: BTreeMap<String, u32> = [("a".to_owned(), 1), ("b".to_owned(), 2)].into();
    assert_misreads!(map.clone() => BTreeMap<String, u32>;
        Vec<(String, u32)>, BTreeMap<String, i32>, BTreeMap<ByteBuf, u32>, BTreeMap<String, u64>);
    // Any map type with the same model reads it.
    assert_eq!(
        write_then_read::<_, HashMap<String, u32>>(map.clone()).await,
        Read::Value(map.clone().into_iter().collect())
    );
    assert_misreads!(Some(vec![-1i32]) => Option<Vec<i32>>; Option<Vec<u32>>, Vec<i32>, Option<Vec<i64>>);
    assert_misreads!(vec![Some(1u16), None] => Vec<Option<u16>>; Vec<Option<u8>>, Vec<u16>, Vec<Option<i16>>);
    assert_misreads!((vec![1u8], (2u16, "x".to_owned())) => (Vec<u8>, (u16, String));
        (Vec<u8>, (u16, ByteBuf)), (Vec<u8>, (i16, String)), (ByteBuf, (u16, String)));
}

#[actix_web::test]
async fn s2_a_misread_is_logged_at_debug_and_leaves_the_session_alone() {
    #[derive(Clone, Default)]
    struct Debugs(Arc<Mutex<Vec<String>>>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Debugs {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Fields(String);
            impl tracing::field::Visit for Fields {
                fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn Debug) {
                    self.0.push_str(&format!("{}={v:?} ", f.name()));
                }
            }
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {}", event.metadata().level(), fields.0));
        }
    }
    let events = Debugs::default();
    let subscriber = tracing_subscriber::registry().with(events.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let clock = TestClock::new();
    let (app, slot) = app_for::<_, u64>(String::from("secret-value"), &clock).await;
    let mut jar = Jar::default();
    get(&app, &mut jar, "/write").await;
    let before = jar.clone();
    let (status, body, set) = get(&app, &mut jar, "/read").await;
    assert_eq!((status, body.as_str()), (200, "Some(7)"));
    assert!(set.is_empty());
    assert_eq!(jar.0, before.0);
    assert_eq!(slot.lock().unwrap().take(), Some(Read::Unreadable));

    let events = events.0.lock().unwrap();
    let misread: Vec<_> = events
        .iter()
        .filter(|e| e.contains("unreadable as the requested type"))
        .collect();
    assert_eq!(misread.len(), 1, "{events:?}");
    assert!(misread[0].starts_with("DEBUG"), "{misread:?}");
    assert!(misread[0].contains("key=\"v\""), "{misread:?}");
    assert!(misread[0].contains("requested=\"u64\""), "{misread:?}");
    assert!(
        events.iter().all(|e| !e.contains("secret-value")),
        "values never reach the log: {events:?}"
    );
}

#[actix_web::test]
async fn s2_update_and_remove_as_check_the_type() {
    let clock = TestClock::new();
    let slot: Slot<String> = Arc::new(Mutex::new(None));
    let out = Arc::clone(&slot);
    let app = test::init_service(
        App::new()
            .wrap(builder(ring(Default::default()), &clock).build().unwrap())
            .route(
                "/write",
                web::get().to(|s: Session| async move {
                    s.insert("n", 100i32).unwrap();
                    HttpResponse::Ok().finish()
                }),
            )
            .route(
                "/misuse",
                web::get().to(move |s: Session| {
                    let out = Arc::clone(&out);
                    async move {
                        let update = s.update::<usize, _>("n", |n| n + 1).is_err();
                        let removed = s.remove_as::<u32>("n");
                        *out.lock().unwrap() = Some(Read::Value(format!("{update} {removed:?}")));
                        HttpResponse::Ok().finish()
                    }
                }),
            ),
    )
    .await;
    let mut jar = Jar::default();
    get(&app, &mut jar, "/write").await;
    get(&app, &mut jar, "/misuse").await;
    // The update is refused; the removal hands back the raw bytes (100i32 → zigzag 200).
    assert_eq!(
        slot.lock().unwrap().take(),
        Some(Read::Value("true Some(Err([200, 1]))".to_owned()))
    );
}

/// A cookie sealed before fingerprints existed: schema 1, raw postcard values.
fn legacy_cookie_header(entries: &[(&str, Vec<u8>)]) -> String {
    let codec = Codec::new(SessionConfig::new().cookie_name("__Host-s")).unwrap();
    let keyring = ring(Default::default());
    let now = TestClock::new().now();
    let state = SessionState::from_parts(
        [9; 16],
        now,
        now + std::time::Duration::from_secs(3600),
        now,
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    );
    codec
        .seal(&keyring, &state, now, &mut rand::rng())
        .unwrap()
        .iter()
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Sends the legacy cookie `header` to `/read`, reading `"v"` as `R`.
async fn read_legacy<R: DeserializeOwned + Send + 'static>(header: &str) -> Read<R> {
    let clock = TestClock::new();
    let (app, slot) = app_for::<u8, R>(0, &clock).await;
    let req = test::TestRequest::get()
        .uri("/read")
        .insert_header((actix_web::http::header::COOKIE, header.to_owned()))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("set-cookie").is_none(),
        "a read re-issues nothing"
    );
    let body = test::read_body(res).await;
    assert_eq!(&body[..], b"Some(7)", "the old cookie opened");
    slot.lock().unwrap().take().expect("the handler ran")
}

#[actix_web::test]
async fn s2_legacy_entries_read_unchecked_as_before() {
    // 100i32 as postcard (zigzag varint 200) without a fingerprint: what earlier builds wrote.
    let v = postcard::to_allocvec(&100i32).unwrap();
    let header = legacy_cookie_header(&[("other", vec![7]), ("v", v)]);
    assert_eq!(read_legacy::<i32>(&header).await, Read::Value(100));
    // Unchecked, as before: another type reads the old, wrong answer (docs/FORMAT.md §6.1).
    assert_eq!(read_legacy::<usize>(&header).await, Read::Value(200));

    // Writing the value again gives it a fingerprint: from then on it is checked.
    let clock = TestClock::new();
    let (app, slot) = app_for::<i32, usize>(100, &clock).await;
    let mut jar = Jar::default();
    for pair in header.split("; ") {
        let (k, v) = pair.split_once('=').unwrap();
        jar.0.insert(k.to_owned(), v.to_owned());
    }
    let (_, _, set) = get(&app, &mut jar, "/write").await;
    assert_eq!(
        set.len(),
        1,
        "the same bytes, now with a fingerprint, are sealed again"
    );
    get(&app, &mut jar, "/read").await;
    assert_eq!(slot.lock().unwrap().take(), Some(Read::Unreadable));
}

/// Rolling upgrade from a release without fingerprints: with `value_fingerprints(false)` the
/// middleware writes schema 1 (no entry carries a fingerprint), which earlier builds open;
/// the default writes fingerprints again.
#[actix_web::test]
async fn s2_rolling_upgrade_writes_schema_1_until_told_otherwise() {
    for (on, expect_fingerprint) in [(false, false), (true, true)] {
        let clock = TestClock::new();
        let app = test::init_service(
            App::new()
                .wrap(
                    builder(ring(Default::default()), &clock)
                        .value_fingerprints(on)
                        .build()
                        .unwrap(),
                )
                .route(
                    "/write",
                    web::get().to(|s: Session| async move {
                        s.insert("v", 100i32).unwrap();
                        HttpResponse::Ok().finish()
                    }),
                ),
        )
        .await;
        let mut jar = Jar::default();
        let (status, _, set) = get(&app, &mut jar, "/write").await;
        assert_eq!((status, set.len()), (200, 1));
        let header = jar
            .0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let codec = Codec::new(SessionConfig::new().cookie_name("__Host-s")).unwrap();
        let opened = codec
            .open(
                &ring(Default::default()),
                sealed_session::codec::cookie_pairs([header.as_bytes()]),
                clock.now(),
            )
            .unwrap()
            .expect("the cookie opens");
        assert_eq!(
            opened.state.fingerprint("v").is_some(),
            expect_fingerprint,
            "value_fingerprints({on})"
        );
        assert_eq!(opened.state.get::<i32>("v").unwrap(), Some(100));
    }
}

// ---------------------------------------------------------------------------------------
// Property: over random pairs of distinct types, a value written as `A` and read as `B`
// (after a real seal and open) is either `Err`, or a value that postcard encodes to exactly
// the stored bytes with exactly the stored fingerprint (the same data, in the same data
// model: `None`, an empty `Vec`, an array read as a tuple). Pairs that are the same model
// for every value must read.

mod property {
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    use sealed_session::state::fingerprint_of;

    use super::{
        BTreeMap, ByteBuf, Codec, DeserializeOwned, Pair, PairTuple, Serialize, SessionConfig,
        SessionState, Wrapper, e_added, e_reordered, e1, renamed, reordered, v1,
    };
    use crate::support::{TestClock, ring};

    trait Gen: Sized {
        fn generate(r: &mut StdRng) -> Self;
    }

    macro_rules! gen_random {
        ($($t:ty),*) => { $(impl Gen for $t { fn generate(r: &mut StdRng) -> Self { r.random() } })* };
    }
    gen_random!(u8, i8, u16, i16, u32, i32, u64, i64, u128, bool, f32);

    impl Gen for usize {
        fn generate(r: &mut StdRng) -> Self {
            r.random::<u64>() as usize
        }
    }
    impl Gen for char {
        fn generate(r: &mut StdRng) -> Self {
            ['a', 'é', '\0', '€', '😀'][r.random_range(0..5)]
        }
    }
    impl Gen for String {
        fn generate(r: &mut StdRng) -> Self {
            (0..r.random_range(0..4))
                .map(|_| char::generate(r))
                .collect()
        }
    }
    impl Gen for Box<str> {
        fn generate(r: &mut StdRng) -> Self {
            String::generate(r).into()
        }
    }
    impl Gen for () {
        fn generate(_: &mut StdRng) -> Self {}
    }
    impl<T: Gen> Gen for Vec<T> {
        fn generate(r: &mut StdRng) -> Self {
            (0..r.random_range(0..4)).map(|_| T::generate(r)).collect()
        }
    }
    impl Gen for ByteBuf {
        fn generate(r: &mut StdRng) -> Self {
            ByteBuf::from(Vec::<u8>::generate(r))
        }
    }
    impl<T: Gen> Gen for Option<T> {
        fn generate(r: &mut StdRng) -> Self {
            r.random::<bool>().then(|| T::generate(r))
        }
    }
    impl<A: Gen, B: Gen> Gen for (A, B) {
        fn generate(r: &mut StdRng) -> Self {
            (A::generate(r), B::generate(r))
        }
    }
    impl Gen for [u32; 2] {
        fn generate(r: &mut StdRng) -> Self {
            [r.random(), r.random()]
        }
    }
    impl<K: Gen + Ord, V: Gen> Gen for BTreeMap<K, V> {
        fn generate(r: &mut StdRng) -> Self {
            Vec::<(K, V)>::generate(r).into_iter().collect()
        }
    }
    impl Gen for Pair {
        fn generate(r: &mut StdRng) -> Self {
            Pair {
                a: r.random(),
                b: String::generate(r),
            }
        }
    }
    impl Gen for PairTuple {
        fn generate(r: &mut StdRng) -> Self {
            PairTuple(r.random(), String::generate(r))
        }
    }
    impl Gen for Wrapper {
        fn generate(r: &mut StdRng) -> Self {
            Wrapper(r.random())
        }
    }
    impl Gen for v1::Account {
        fn generate(r: &mut StdRng) -> Self {
            v1::Account {
                id: r.random(),
                level: r.random(),
            }
        }
    }
    impl Gen for reordered::Account {
        fn generate(r: &mut StdRng) -> Self {
            reordered::Account {
                level: r.random(),
                id: r.random(),
            }
        }
    }
    impl Gen for renamed::Account {
        fn generate(r: &mut StdRng) -> Self {
            renamed::Account {
                id: r.random(),
                rank: r.random(),
            }
        }
    }
    impl Gen for e1::Role {
        fn generate(r: &mut StdRng) -> Self {
            match r.random_range(0..3) {
                0 => e1::Role::Guest,
                1 => e1::Role::Member(r.random()),
                _ => e1::Role::Admin { since: r.random() },
            }
        }
    }
    impl Gen for e_reordered::Role {
        fn generate(r: &mut StdRng) -> Self {
            match r.random_range(0..3) {
                0 => e_reordered::Role::Guest,
                1 => e_reordered::Role::Member(r.random()),
                _ => e_reordered::Role::Admin { since: r.random() },
            }
        }
    }
    impl Gen for e_added::Role {
        fn generate(r: &mut StdRng) -> Self {
            match r.random_range(0..4) {
                0 => e_added::Role::Guest,
                1 => e_added::Role::Member(r.random()),
                2 => e_added::Role::Admin { since: r.random() },
                _ => e_added::Role::Banned,
            }
        }
    }

    type Write = fn(&mut SessionState, &mut StdRng);
    /// `Some((postcard bytes, fingerprint))` of the value read, `None` for `Err`.
    type ReadBack = fn(&SessionState) -> Option<(Vec<u8>, u64)>;

    fn write<T: Gen + Serialize>(s: &mut SessionState, r: &mut StdRng) {
        s.insert("v", &T::generate(r)).unwrap();
    }

    fn read<T: DeserializeOwned + Serialize>(s: &SessionState) -> Option<(Vec<u8>, u64)> {
        match s.get::<T>("v") {
            Ok(Some(b)) => Some((
                postcard::to_allocvec(&b).unwrap(),
                fingerprint_of(&b).unwrap(),
            )),
            Ok(None) => panic!("the key is present"),
            Err(_) => None,
        }
    }

    macro_rules! universe {
        ($($t:ty),* $(,)?) => {
            &[$((stringify!($t), write::<$t> as Write, read::<$t> as ReadBack)),*]
        };
    }

    const TYPES: &[(&str, Write, ReadBack)] = universe![
        u8, i8, u16, i16, u32, i32, u64, i64, usize, u128, bool, f32, char, (),
        String, Box<str>, Vec<u8>, ByteBuf, Vec<char>,
        Option<u32>, Option<i32>, Option<String>, Option<Option<u32>>,
        (u32, String), Pair, PairTuple, Wrapper, [u32; 2], (u32, u32),
        Vec<u32>, Vec<i64>, Vec<Option<u8>>, Vec<Vec<u8>>, Vec<String>,
        BTreeMap<String, u32>, Vec<(String, u32)>, BTreeMap<String, i32>,
        e1::Role, e_reordered::Role, e_added::Role,
        v1::Account, reordered::Account, renamed::Account,
    ];

    /// Pairs (written, read) of the same data model for every value: they must read.
    const SAME_MODEL: &[(&str, &str)] = &[
        ("String", "Box<str>"),
        ("Box<str>", "String"),
        ("[u32; 2]", "(u32, u32)"),
        ("(u32, u32)", "[u32; 2]"),
        ("e1::Role", "e_added::Role"),
        ("u64", "usize"),
        ("usize", "u64"),
    ];

    fn sealed_and_opened(state: &SessionState) -> SessionState {
        let codec = Codec::new(SessionConfig::new().cookie_name("__Host-s")).unwrap();
        let keyring = ring(Default::default());
        let now = TestClock::new().now();
        let cookies = codec.seal(&keyring, state, now, &mut rand::rng()).unwrap();
        let pairs: Vec<(String, String)> = cookies
            .iter()
            .map(|c| (c.name().to_owned(), c.value().to_owned()))
            .collect();
        codec
            .open(
                &keyring,
                pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
                now,
            )
            .unwrap()
            .unwrap()
            .state
    }

    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(1000)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn s2_random_pairs_of_distinct_types_never_misread(
            a in 0..TYPES.len(),
            b in 0..TYPES.len(),
            seed in any::<u64>(),
        ) {
            prop_assume!(a != b);
            let (a_name, write_a, read_a) = TYPES[a];
            let (b_name, _, read_b) = TYPES[b];
            let now = TestClock::new().now();
            let mut state = SessionState::new(now, std::time::Duration::from_secs(3600));
            write_a(&mut state, &mut StdRng::seed_from_u64(seed));
            let state = sealed_and_opened(&state);
            let stored = (state.entries()["v"].clone(), state.fingerprint("v").unwrap());
            // The written type always reads its value back.
            prop_assert_eq!(read_a(&state), Some(stored.clone()), "{} as itself", a_name);
            match read_b(&state) {
                Some(read) => prop_assert_eq!(read, stored, "{} read as {}: a wrong value", a_name, b_name),
                None => prop_assert!(
                    !SAME_MODEL.contains(&(a_name, b_name)),
                    "{} read as {}: the same model must read", a_name, b_name
                ),
            }
        }
    }
}
