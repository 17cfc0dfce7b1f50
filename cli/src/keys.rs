//! `keys init|rotate|list|retire` and `check`. Ids, algorithms, states and times only: no
//! secret is ever printed.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use sealed_session::keyring::{Key, KeyId, KeyState, Secret};
use sealed_session::{Algorithm, Keyring};
use serde::Serialize;

use crate::command::{Before, Retire};
use crate::keyfile;

/// `keys init`: a keyring with one key that seals from now on.
pub fn init(
    out: &mut impl Write,
    path: &Path,
    algorithm: Algorithm,
    force: bool,
    create_dirs: bool,
    now: SystemTime,
) -> anyhow::Result<ExitCode> {
    if !force && keyfile::exists(path) {
        bail!(
            "keyring {} already exists; pass --force to replace it (its keys would be lost and \
             every session sealed with them would end)",
            path.display()
        );
    }
    let now = whole_seconds(now);
    let keyring = Keyring::generate(algorithm, now).context("cannot generate a key")?;
    if create_dirs {
        keyfile::create_parent_dirs(path)?;
    }
    keyfile::write_atomic(path, keyring.to_json().as_bytes())?;
    let key = keyring.sealing_key(now);
    writeln!(
        out,
        "created keyring {} with key {} ({}), sealing from now on",
        path.display(),
        key.id(),
        key.algorithm()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `keys rotate`: adds a key that seals from `now + activate_in`.
pub fn rotate(
    out: &mut impl Write,
    path: &Path,
    activate_in: Duration,
    algorithm: Algorithm,
    now: SystemTime,
) -> anyhow::Result<ExitCode> {
    let keyring = keyfile::read(path, now)?;
    let previous = keyring.sealing_key(now).id();

    // The file keeps whole seconds. Truncating here makes `0s` seal at once, and moving past
    // any other key's activation second avoids a tie (which only the random id would break).
    let created = whole_seconds(now);
    let requested = created
        .checked_add(activate_in)
        .context("--activate-in lies too far in the future")?;
    let taken: HashSet<SystemTime> = keyring
        .keys()
        .iter()
        .filter(|k| !k.is_retired())
        .map(Key::activates_at)
        .collect();
    let mut activates = requested;
    while taken.contains(&activates) {
        activates += Duration::from_secs(1);
    }

    let id = fresh_id(&keyring)?;
    let secret = Secret::generate().context("cannot generate a key")?;
    let updated = keyring
        .with_key(Key::new(id, algorithm, secret, created, activates), now)
        .with_context(|| format!("cannot add a key to keyring {}", path.display()))?;
    keyfile::write_atomic(path, updated.to_json().as_bytes())?;

    if updated.sealing_key(now).id() == id {
        writeln!(
            out,
            "added key {id} ({algorithm}) to {}: it seals from now on",
            path.display()
        )?;
    } else {
        writeln!(
            out,
            "added key {id} ({algorithm}) to {}: pending, it seals from {} ({})",
            path.display(),
            rfc3339(activates),
            relative(activates, now)
        )?;
    }
    if activates != requested {
        writeln!(
            out,
            "note: activation moved {} later so that no two keys activate in the same second",
            humantime::format_duration(activates.duration_since(requested).unwrap_or_default())
        )?;
    }
    writeln!(
        out,
        "key {previous} and every other earlier key keep opening cookies"
    )?;
    for later in updated
        .keys()
        .iter()
        .filter(|k| !k.is_retired() && k.activates_at() > activates)
    {
        writeln!(
            out,
            "warning: key {} activates later ({}) and will take over sealing then",
            later.id(),
            rfc3339(later.activates_at())
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One key as `keys list --json` prints it.
#[derive(Serialize)]
struct KeyView {
    id: String,
    algorithm: &'static str,
    state: &'static str,
    created_at: String,
    activates_at: String,
    retired_at: Option<String>,
}

/// `keys list`.
pub fn list(
    out: &mut impl Write,
    path: &Path,
    json: bool,
    now: SystemTime,
) -> anyhow::Result<ExitCode> {
    let keyring = keyfile::read(path, now)?;
    keyfile::warn_if_exposed(path);
    let views: Vec<KeyView> = keyring
        .states(now)
        .map(|(k, state)| KeyView {
            id: k.id().to_string(),
            algorithm: k.algorithm().name(),
            state: state.name(),
            created_at: rfc3339(k.created_at()),
            activates_at: rfc3339(k.activates_at()),
            retired_at: k.retired_at().map(rfc3339),
        })
        .collect();
    if json {
        // An array of keys, as before the cutoff existed; the cutoff is in the table and in
        // `check`.
        writeln!(out, "{}", serde_json::to_string_pretty(&views)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<8}  {:<17}  {:<9}  {:<20}  {:<20}  RETIRED",
        "ID", "ALGORITHM", "STATE", "CREATED", "ACTIVATES"
    )?;
    for v in &views {
        writeln!(
            out,
            "{:<8}  {:<17}  {:<9}  {:<20}  {:<20}  {}",
            v.id,
            v.algorithm,
            v.state,
            v.created_at,
            v.activates_at,
            v.retired_at.as_deref().unwrap_or("-")
        )?;
    }
    writeln!(out, "{}", cutoff_line(&keyring, now))?;
    Ok(ExitCode::SUCCESS)
}

/// `keys retire`.
pub fn retire(
    out: &mut impl Write,
    path: &Path,
    which: &Retire,
    now: SystemTime,
) -> anyhow::Result<ExitCode> {
    let keyring = keyfile::read(path, now)?;
    let sealing = keyring.sealing_key(now).id();
    let targets: Vec<KeyId> = match which {
        Retire::Ids(ids) => {
            let mut targets = Vec::new();
            for &id in ids {
                let key = keyring.get(id).with_context(|| {
                    format!(
                        "keyring {} has no key {id} (see `sealed-session keys list --keyring {}`)",
                        path.display(),
                        path.display()
                    )
                })?;
                if key.is_retired() {
                    writeln!(out, "key {id} is already retired")?;
                } else if !targets.contains(&id) {
                    // `--id` is given by hand: a short list, searched linearly.
                    targets.push(id);
                }
            }
            targets
        }
        Retire::OlderThan(age) => keyring
            .keys()
            .iter()
            .filter(|k| !k.is_retired() && k.id() != sealing)
            .filter(|k| now.duration_since(k.activates_at()).is_ok_and(|a| a > *age))
            .map(Key::id)
            .collect(),
    };
    if targets.is_empty() {
        writeln!(
            out,
            "no key to retire; keyring {} unchanged",
            path.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }

    let names: Vec<String> = targets.iter().map(KeyId::to_string).collect();
    let target_set: HashSet<KeyId> = targets.iter().copied().collect();
    let updated = keyring.with_retired(now, |k| target_set.contains(&k.id())).with_context(|| {
        format!(
            "refusing to retire {} in {}: no key would be left to seal new sessions (rotate in a \
             new key and wait for it to activate first); keyring unchanged",
            names.join(", "),
            path.display()
        )
    })?;
    keyfile::write_atomic(path, updated.to_json().as_bytes())?;
    let superseded = Superseded::new(&keyring, now);
    let by_id: HashMap<KeyId, &Key> = keyring.keys().iter().map(|k| (k.id(), k)).collect();
    for &id in &targets {
        writeln!(
            out,
            "retired key {id}: cookies sealed with it no longer open"
        )?;
        // `--older-than` counts from a key's own activation; what matters to users is how
        // long ago it stopped sealing. Say so when that is recent.
        if id == sealing {
            writeln!(
                out,
                "warning: key {id} was the sealing key: every session it sealed ends now"
            )?;
            continue;
        }
        let Some(since) = by_id.get(&id).and_then(|k| superseded.at(k)) else {
            continue;
        };
        let ago = now.duration_since(since).unwrap_or_default();
        let recent = match which {
            Retire::OlderThan(age) => ago < *age,
            Retire::Ids(_) => ago < Duration::from_secs(86_400),
        };
        if recent {
            writeln!(
                out,
                "warning: key {id} sealed cookies until {} ({}); those sessions that have not \
                 expired yet end now",
                rfc3339(since),
                relative(since, now)
            )?;
        }
    }
    let now_sealing = updated.sealing_key(now);
    if now_sealing.id() != sealing {
        writeln!(out, "key {} seals from now on", now_sealing.id())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `keys list`'s last line: the fleet-wide cutoff, if any.
fn cutoff_line(keyring: &Keyring, now: SystemTime) -> String {
    match keyring.not_before() {
        None => "cutoff: none (no session is refused for when it was issued)".to_owned(),
        Some(t) => format!(
            "cutoff: {} ({}): sessions issued earlier are refused",
            rfc3339(t),
            relative(t, now)
        ),
    }
}

/// `revoke --before`: records the cutoff in the keyring file. Every node refuses sessions
/// issued before it once its hot reload has read the file.
pub fn revoke(
    out: &mut impl Write,
    path: &Path,
    before: Before,
    now: SystemTime,
) -> anyhow::Result<ExitCode> {
    let keyring = keyfile::read(path, now)?;
    let now = whole_seconds(now);
    let cutoff = match before {
        Before::Now => now,
        Before::At(t) => whole_seconds(t),
    };
    if cutoff > now {
        bail!(
            "refusing a cutoff in the future ({}): sessions issued until then, new logins \
             included, would be refused at that moment; keyring unchanged",
            rfc3339(cutoff)
        );
    }
    match keyring.not_before() {
        Some(old) if old > cutoff => bail!(
            "keyring {} already refuses sessions issued before {}, later than {}: a cutoff \
             never moves back (that would revive revoked sessions); keyring unchanged",
            path.display(),
            rfc3339(old),
            rfc3339(cutoff)
        ),
        Some(old) if old == cutoff => {
            writeln!(
                out,
                "keyring {} already refuses sessions issued before {}; unchanged",
                path.display(),
                rfc3339(cutoff)
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let updated = keyring.with_not_before(Some(cutoff));
    keyfile::write_atomic(path, updated.to_json().as_bytes())?;
    writeln!(
        out,
        "revoked every session issued before {} ({}) in {}: each node refuses them once it has \
         reloaded the file (within its reload interval, 5 s by default); logins from now on \
         are unaffected",
        rfc3339(cutoff),
        relative(cutoff, now),
        path.display()
    )?;
    writeln!(
        out,
        "note: the file is now keyring version 2, which releases before the cutoff existed \
         refuse (they keep their last keyring): upgrade every node first"
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `check`: a one-line summary of a usable keyring.
pub fn check(out: &mut impl Write, path: &Path, now: SystemTime) -> anyhow::Result<ExitCode> {
    let keyring = keyfile::read(path, now)?;
    keyfile::warn_if_exposed(path);
    let keys = keyring.keys();
    let states: Vec<KeyState> = keyring.states(now).map(|(_, state)| state).collect();
    let count = |wanted| states.iter().filter(|&&s| s == wanted).count();
    let sealing = keyring.sealing_key(now);
    let pending: Vec<String> = keyring
        .states(now)
        .filter(|&(_, state)| state == KeyState::Pending)
        .map(|(k, _)| format!("{} (activates {})", k.id(), rfc3339(k.activates_at())))
        .collect();
    writeln!(
        out,
        "ok: {}: {} key{} ({} open-only, {} retired), sealing key {} ({}), pending: {}, \
         cutoff: {}",
        path.display(),
        keys.len(),
        if keys.len() == 1 { "" } else { "s" },
        count(KeyState::OpenOnly),
        count(KeyState::Retired),
        sealing.id(),
        sealing.algorithm(),
        if pending.is_empty() {
            "none".to_owned()
        } else {
            pending.join(", ")
        },
        keyring
            .not_before()
            .map_or_else(|| "none".to_owned(), rfc3339)
    )?;
    Ok(ExitCode::SUCCESS)
}

/// When each key stopped sealing, answered in logarithmic time so that retiring many keys
/// stays linear-logarithmic in the size of the keyring.
struct Superseded {
    /// The usable keys activated by `now`, by rank, each with the earliest activation among
    /// the keys that outrank it (`None` for the sealing key).
    ranked: Vec<(Rank, Option<SystemTime>)>,
}

/// The order in which keys take over sealing (see `Keyring::sealing_key`).
type Rank = (SystemTime, SystemTime, KeyId);

fn rank(k: &Key) -> Rank {
    (k.activates_at(), k.created_at(), k.id())
}

impl Superseded {
    fn new(keyring: &Keyring, now: SystemTime) -> Self {
        let mut ranks: Vec<Rank> = keyring
            .keys()
            .iter()
            .filter(|k| !k.is_retired() && k.activates_at() <= now)
            .map(rank)
            .collect();
        ranks.sort_unstable();
        let mut ranked = Vec::with_capacity(ranks.len());
        let mut earliest_above: Option<SystemTime> = None;
        for r in ranks.into_iter().rev() {
            ranked.push((r, earliest_above));
            earliest_above = Some(earliest_above.map_or(r.0, |t| t.min(r.0)));
        }
        ranked.reverse();
        Superseded { ranked }
    }

    /// When key `id` stopped sealing: the first activation, up to `now`, of a key that
    /// outranks it. `None` if it still seals (or never did).
    fn at(&self, key: &Key) -> Option<SystemTime> {
        let r = rank(key);
        match self.ranked.binary_search_by(|(other, _)| other.cmp(&r)) {
            Ok(i) => self.ranked.get(i)?.1,
            // A pending or retired key: the first activated key that outranks it.
            Err(i) => self.ranked.get(i..)?.iter().map(|(o, _)| o.0).min(),
        }
    }
}

/// A random key id that no key of `keyring` has.
fn fresh_id(keyring: &Keyring) -> anyhow::Result<KeyId> {
    for _ in 0..64 {
        let mut id = [0u8; 4];
        getrandom::fill(&mut id)
            .map_err(|e| anyhow::anyhow!("the random generator failed: {e}"))?;
        let id = KeyId(id);
        if keyring.get(id).is_none() {
            return Ok(id);
        }
    }
    bail!("could not draw a key id that is not already in the keyring")
}

/// `t` without its fraction of a second, as the keyring file stores it.
pub fn whole_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

/// RFC 3339 in UTC, whole seconds.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// "in 1h 2m" or "5m ago", to the second.
pub fn relative(t: SystemTime, now: SystemTime) -> String {
    let secs =
        |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string();
    match t.duration_since(now) {
        Ok(ahead) if ahead.is_zero() => "now".to_owned(),
        Ok(ahead) if ahead.as_secs() == 0 => "in under a second".to_owned(),
        Ok(ahead) => format!("in {}", secs(ahead)),
        Err(behind) if behind.duration().as_secs() == 0 => "now".to_owned(),
        Err(behind) => format!("{} ago", secs(behind.duration())),
    }
}
