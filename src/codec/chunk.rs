//! The chunk stage: one armored envelope ⇄ several cookies `<name>`, `<name>.1`, `<name>.2` …
//!
//! The first cookie's value starts with the chunk count: `<count>.<armor>`. Names keep the
//! base name's `__Host-`/`__Secure-` prefix. On the request side every bound is checked
//! before anything is allocated: the count (1–[`MAX_CHUNKS`], canonical digits), each
//! chunk's length, the number of our cookies, the total length, and the number of candidate
//! sets that duplicates can form.

use crate::error::{ChunkError, DecodeError, EncodeError};

/// The most chunks a session may span: far below the 180 cookies a site may hold per domain.
pub(crate) const MAX_CHUNKS: usize = 32;
/// Chromium and Firefox drop a cookie whose name and value together exceed this.
pub(crate) const MAX_NAME_VALUE: usize = 4096;
/// How many distinct values of one chunk name are tried (host-only and parent-domain copies,
/// HTTP/2 split headers). More make the request ambiguous: dropping the excess would let
/// planted values push the real one out (issue 9, A1).
const MAX_DUPLICATES: usize = 4;
/// How many cookies that look like ours are looked at before the request is refused.
const MAX_OUR_COOKIES: usize = 2 * MAX_CHUNKS;

/// Which chunk indices a request carried (bit `i` for chunk `i`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkSet(pub(crate) u32);

impl ChunkSet {
    /// Whether no chunk was present.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of chunk names present.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub(crate) fn insert(&mut self, index: usize) {
        self.0 |= 1 << index;
    }

    /// Present indices at or above `from`, ascending.
    pub(crate) fn indices_from(self, from: usize) -> impl Iterator<Item = usize> {
        (from..MAX_CHUNKS).filter(move |i| self.0 & (1 << i) != 0)
    }
}

/// The chunk names of one base name, computed once.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    names: Vec<String>,
}

impl Names {
    pub(crate) fn new(base: &str) -> Self {
        let names = (0..MAX_CHUNKS)
            .map(|i| {
                if i == 0 {
                    base.to_owned()
                } else {
                    format!("{base}.{i}")
                }
            })
            .collect();
        Names { names }
    }

    pub(crate) fn base(&self) -> &str {
        self.get(0)
    }

    /// Name of chunk `i` (`i < MAX_CHUNKS`).
    pub(crate) fn get(&self, i: usize) -> &str {
        self.names.get(i).map_or("", String::as_str)
    }

    /// The chunk index a cookie name denotes, if it is exactly one of ours.
    pub(crate) fn index_of(&self, name: &[u8]) -> Option<usize> {
        let base = self.base().as_bytes();
        let rest = name.strip_prefix(base)?;
        match rest {
            [] => Some(0),
            [b'.', digits @ ..] => parse_index(digits).filter(|&i| i > 0 && i < MAX_CHUNKS),
            _ => None,
        }
    }
}

/// How an armored envelope of a given length will be cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Armored characters carried by each chunk, in order.
    pub(crate) sizes: Vec<usize>,
}

impl Plan {
    pub(crate) fn count(&self) -> usize {
        self.sizes.len()
    }
}

/// Chooses the fewest chunks that carry `armored_len` characters with every `Set-Cookie`
/// line (`name=value` + `attrs_len` bytes of rendered attributes) within `line_budget` and
/// every name+value within 4096, then checks the `Cookie` header they make against
/// `total_budget`.
pub(crate) fn plan(
    names: &Names,
    armored_len: usize,
    attrs_len: usize,
    line_budget: usize,
    total_budget: usize,
) -> Result<Plan, EncodeError> {
    let capacity = |i: usize| {
        let name = names.get(i).len();
        let by_line = line_budget.saturating_sub(name.saturating_add(1).saturating_add(attrs_len));
        let by_browser = MAX_NAME_VALUE.saturating_sub(name);
        by_line.min(by_browser)
    };
    for count in 1..=MAX_CHUNKS {
        let prefix = count_prefix_len(count);
        let room: usize = (0..count)
            .map(capacity)
            .sum::<usize>()
            .saturating_sub(prefix);
        if room < armored_len {
            continue;
        }
        let mut left = armored_len;
        let mut sizes = Vec::with_capacity(count);
        for i in 0..count {
            let cap = if i == 0 {
                capacity(0).saturating_sub(prefix)
            } else {
                capacity(i)
            };
            let take = cap.min(left);
            sizes.push(take);
            left = left.saturating_sub(take);
        }
        if sizes.iter().skip(1).any(|&s| s == 0) {
            // An empty trailing chunk means capacity(0) could not hold the prefix.
            break;
        }
        let needed = header_len(names, &sizes);
        if needed > total_budget {
            return Err(EncodeError::TooLarge {
                needed,
                budget: total_budget,
            });
        }
        return Ok(Plan { sizes });
    }
    let needed = armored_len
        .saturating_add(count_prefix_len(MAX_CHUNKS))
        .saturating_add(names.base().len());
    Err(EncodeError::TooLarge {
        needed: needed.max(total_budget.saturating_add(1)),
        budget: total_budget,
    })
}

/// One chunk to send: its cookie name, the chunk count (first chunk only, written as the
/// `<count>.` prefix of its value) and its share of the armored envelope.
pub(crate) struct Piece<'n, 'a> {
    pub(crate) name: &'n str,
    pub(crate) count: Option<usize>,
    pub(crate) armor: &'a [u8],
}

/// Cuts `armored` by `plan`, without copying.
pub(crate) fn split<'n, 'a>(
    names: &'n Names,
    armored: &'a [u8],
    plan: &'a Plan,
) -> impl Iterator<Item = Piece<'n, 'a>> {
    let mut rest = armored;
    plan.sizes.iter().enumerate().map(move |(i, &size)| {
        let (armor, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        let count = (i == 0).then_some(plan.count());
        Piece {
            name: names.get(i),
            count,
            armor,
        }
    })
}

/// Bytes `name=value` pairs occupy in a `Cookie` request header, `; `-separated.
fn header_len(names: &Names, sizes: &[usize]) -> usize {
    let pairs = sizes.iter().enumerate().fold(0usize, |acc, (i, s)| {
        acc.saturating_add(names.get(i).len())
            .saturating_add(1)
            .saturating_add(*s)
    });
    let separators = sizes.len().saturating_sub(1).saturating_mul(2);
    pairs
        .saturating_add(count_prefix_len(sizes.len()))
        .saturating_add(separators)
}

fn count_prefix_len(count: usize) -> usize {
    if count < 10 { 2 } else { 3 }
}

/// One way to assemble a session from the chunks present: the declared count and the
/// armored pieces in order.
pub(crate) struct Candidate<'a> {
    pub(crate) count: u8,
    pub(crate) pieces: Vec<&'a [u8]>,
}

/// The chunk cookies of one request, grouped by index.
pub(crate) struct Gathered<'a> {
    slots: Vec<Vec<&'a [u8]>>,
    present: ChunkSet,
}

/// Collects our chunk cookies from raw pairs. `Ok(None)` when none is present at all.
///
/// More than [`MAX_DUPLICATES`] distinct values for one chunk name is
/// [`DecodeError::Ambiguous`]: no session, never a truncated choice (cookie tossing could
/// otherwise plant junk values first so that only the attacker's session is kept).
pub(crate) fn gather<'a>(
    names: &Names,
    pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<Option<Gathered<'a>>, DecodeError> {
    let mut slots: Vec<Vec<&'a [u8]>> = Vec::new();
    let mut seen = 0usize;
    let mut present = ChunkSet::default();
    let mut overflow = false;
    for (name, value) in pairs {
        let Some(index) = names.index_of(name) else {
            continue;
        };
        seen = seen.saturating_add(1);
        if seen > MAX_OUR_COOKIES {
            return Err(DecodeError::Chunk(ChunkError::TooMany));
        }
        if value.len() > MAX_NAME_VALUE {
            return Err(DecodeError::Chunk(ChunkError::TooLong));
        }
        present.insert(index);
        // index < MAX_CHUNKS (checked by `index_of`), so this stays small.
        if slots.len() <= index {
            slots.resize_with(index.saturating_add(1), Vec::new);
        }
        if let Some(slot) = slots.get_mut(index) {
            if !slot.contains(&value) {
                if slot.len() < MAX_DUPLICATES {
                    slot.push(value);
                } else {
                    // Keep scanning: `chunk.too_many` and `chunk.too_long` still come first.
                    overflow = true;
                }
            }
        }
    }
    if overflow {
        return Err(DecodeError::Ambiguous);
    }
    if present.is_empty() {
        return Ok(None);
    }
    Ok(Some(Gathered { slots, present }))
}

impl<'a> Gathered<'a> {
    /// Which of our chunk names the request carried.
    pub(crate) fn present(&self) -> ChunkSet {
        self.present
    }

    /// Every complete candidate set, at most `max_attempts` of them in all, each within
    /// `total_budget` bytes.
    pub(crate) fn candidates(
        &self,
        max_attempts: usize,
        total_budget: usize,
    ) -> Result<Vec<Candidate<'a>>, DecodeError> {
        let firsts = self.slots.first().filter(|s| !s.is_empty());
        let firsts = firsts.ok_or(DecodeError::Chunk(ChunkError::MissingFirst))?;
        let mut out = Vec::new();
        // Every combination counts towards `max_attempts`, within the total budget or not.
        let mut formed = 0usize;
        let mut last_err = DecodeError::Chunk(ChunkError::BadCount);
        for first in firsts {
            let (count, piece0) = match split_count(first) {
                Some(v) => v,
                None => {
                    last_err = DecodeError::Chunk(ChunkError::BadCount);
                    continue;
                }
            };
            // A chunk beyond the count is an error for a lone first cookie. With several first
            // cookies (a tossed cookie from a sibling subdomain, say), the higher chunks may
            // belong to another set: every set is tried, and two authentic ones are ambiguous,
            // so the longer set can never win just by making the shorter one look "extra".
            if firsts.len() == 1 && self.present.indices_from(count).next().is_some() {
                last_err = DecodeError::Chunk(ChunkError::Extra);
                continue;
            }
            let rest = self.slots.get(1..count).unwrap_or(&[]);
            if rest.len().saturating_add(1) != count || rest.iter().any(Vec::is_empty) {
                last_err = DecodeError::Chunk(ChunkError::Missing);
                continue;
            }
            let combos = rest
                .iter()
                .map(Vec::len)
                .try_fold(1usize, usize::checked_mul);
            match combos.and_then(|n| n.checked_add(formed)) {
                Some(n) if n <= max_attempts => formed = n,
                _ => return Err(DecodeError::Chunk(ChunkError::TooManyCandidates)),
            }
            // Odometer over the duplicate choices of chunks 1..count; `combos` bounds the turns.
            let mut choice = vec![0usize; rest.len()];
            for _ in 0..combos.unwrap_or(0) {
                let mut pieces = Vec::with_capacity(count);
                pieces.push(piece0);
                pieces.extend(
                    rest.iter()
                        .zip(&choice)
                        .filter_map(|(slot, &c)| slot.get(c).copied()),
                );
                let total: usize = pieces.iter().map(|p| p.len()).sum();
                if total > total_budget {
                    last_err = DecodeError::Chunk(ChunkError::TotalTooLong);
                } else {
                    // count ≤ MAX_CHUNKS (32) fits a u8.
                    out.push(Candidate {
                        count: u8::try_from(count).unwrap_or(u8::MAX),
                        pieces,
                    });
                }
                for (c, slot) in choice.iter_mut().zip(rest) {
                    *c = c.saturating_add(1);
                    if *c < slot.len() {
                        break;
                    }
                    *c = 0;
                }
            }
        }
        if out.is_empty() {
            Err(last_err)
        } else {
            Ok(out)
        }
    }
}

/// Splits `<count>.<armor>`; the count is canonical decimal in 1..=MAX_CHUNKS. O(1): at most
/// three bytes are looked at before the dot.
fn split_count(value: &[u8]) -> Option<(usize, &[u8])> {
    let dot = value.iter().take(3).position(|&b| b == b'.')?;
    let (digits, rest) = value.split_at(dot);
    let count = parse_index(digits).filter(|&c| c >= 1)?;
    Some((count, rest.get(1..)?))
}

/// Canonical decimal (ASCII digits, no sign, no leading zero) below MAX_CHUNKS + 1.
fn parse_index(digits: &[u8]) -> Option<usize> {
    match digits {
        [d @ b'0'..=b'9'] => Some(digit(*d)),
        [t @ b'1'..=b'9', d @ b'0'..=b'9'] => {
            Some(digit(*t).saturating_mul(10).saturating_add(digit(*d)))
        }
        _ => None,
    }
    .filter(|&n| n <= MAX_CHUNKS)
}

fn digit(b: u8) -> usize {
    usize::from(b.saturating_sub(b'0'))
}

/// Splits raw `Cookie` header values into `(name, value)` pairs without allocating and
/// without requiring UTF-8: one malformed, unrelated cookie must not hide ours.
pub fn cookie_pairs<'a>(
    headers: impl IntoIterator<Item = &'a [u8]>,
) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    headers
        .into_iter()
        .flat_map(|h| SplitSemicolons { rest: Some(h) })
        .filter_map(|pair| {
            let pair = trim_ows(pair);
            let eq = memchr::memchr(b'=', pair)?;
            let (name, value) = pair.split_at(eq);
            Some((trim_ows(name), trim_ows(value.get(1..)?)))
        })
}

/// Strips RFC 6265 optional whitespace (SP and HTAB, nothing else: FORMAT.md §2.4) from
/// both ends. VT, FF, CR, LF and non-ASCII spaces stay part of the name or value.
fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// Splits a header value at `;` with a vectorized search: a session of several chunks makes
/// a `Cookie` header of 10 KB and more, scanned on every request that touches the session.
struct SplitSemicolons<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for SplitSemicolons<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match memchr::memchr(b';', rest) {
            Some(i) => {
                let (pair, tail) = rest.split_at(i);
                self.rest = tail.get(1..);
                Some(pair)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names::new("__Host-s")
    }

    #[test]
    fn names_and_indices_are_canonical() {
        let n = names();
        assert_eq!(n.get(0), "__Host-s");
        assert_eq!(n.get(2), "__Host-s.2");
        assert_eq!(n.index_of(b"__Host-s"), Some(0));
        assert_eq!(n.index_of(b"__Host-s.31"), Some(31));
        for bad in [
            "__Host-s.0",
            "__Host-s.01",
            "__Host-s.+1",
            "__Host-s.32",
            "__Host-s.1 ",
            "__host-s.1",
            "__Host-s.١",
            "__Host-sx",
            "__Host-s.",
            "__Host-s.-1",
        ] {
            assert_eq!(n.index_of(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn counts_are_parsed_in_constant_time_and_strictly() {
        assert_eq!(split_count(b"3.abc"), Some((3, &b"abc"[..])));
        assert_eq!(split_count(b"12."), Some((12, &b""[..])));
        for bad in [
            "0.a",
            "-1.a",
            "007.a",
            "1e9.a",
            "4294967295.a",
            "33.a",
            "abc",
            ".a",
            "1",
        ] {
            assert_eq!(split_count(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn plan_respects_line_browser_and_total_budgets() {
        let n = names();
        let p = plan(&n, 100, 40, 4050, 8000).unwrap();
        assert_eq!(p.sizes, vec![100]);
        let p = plan(&n, 10_000, 40, 4050, 20_000).unwrap();
        assert_eq!(p.count(), 3);
        for (i, s) in p.sizes.iter().enumerate() {
            let line = n.get(i).len() + 1 + s + 40 + if i == 0 { 2 } else { 0 };
            assert!(line <= 4050, "{line}");
        }
        assert_eq!(p.sizes.iter().sum::<usize>(), 10_000);
        assert!(matches!(
            plan(&n, 10_000, 40, 4050, 8000),
            Err(EncodeError::TooLarge { budget: 8000, .. })
        ));
        assert!(matches!(
            plan(&n, 10_000_000, 40, 4050, usize::MAX),
            Err(EncodeError::TooLarge { .. })
        ));
        let armored = "x".repeat(10_000);
        let pieces: Vec<_> = split(&n, armored.as_bytes(), &p).collect();
        assert_eq!(pieces[0].count, Some(3));
        assert!(pieces[1].count.is_none());
        assert_eq!(pieces[2].name, "__Host-s.2");
        assert_eq!(
            pieces.iter().map(|p| p.armor).collect::<Vec<_>>().concat(),
            armored.as_bytes()
        );
    }

    #[test]
    fn gather_bounds_duplicates_and_finds_missing_or_extra() {
        let n = names();
        let pairs = |v: &[(&'static str, &'static str)]| -> Vec<(&'static [u8], &'static [u8])> {
            v.iter()
                .map(|(a, b)| (a.as_bytes(), b.as_bytes()))
                .collect()
        };
        assert!(gather(&n, pairs(&[("other", "x")])).unwrap().is_none());
        let g = gather(&n, pairs(&[("__Host-s", "2.ab"), ("__Host-s.1", "cd")]))
            .unwrap()
            .unwrap();
        let c = g.candidates(8, 100).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].pieces, vec![&b"ab"[..], &b"cd"[..]]);
        let g = gather(&n, pairs(&[("__Host-s", "2.ab")])).unwrap().unwrap();
        assert_eq!(
            g.candidates(8, 100).err(),
            Some(DecodeError::Chunk(ChunkError::Missing))
        );
        let g = gather(&n, pairs(&[("__Host-s", "1.ab"), ("__Host-s.3", "x")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            g.candidates(8, 100).err(),
            Some(DecodeError::Chunk(ChunkError::Extra))
        );
        let g = gather(&n, pairs(&[("__Host-s.1", "ab")])).unwrap().unwrap();
        assert_eq!(
            g.candidates(8, 100).err(),
            Some(DecodeError::Chunk(ChunkError::MissingFirst))
        );
        let g = gather(
            &n,
            pairs(&[
                ("__Host-s", "2.ab"),
                ("__Host-s.1", "c"),
                ("__Host-s.1", "d"),
                ("__Host-s", "2.x"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(g.candidates(8, 100).unwrap().len(), 4);
        assert_eq!(
            g.candidates(3, 100).err(),
            Some(DecodeError::Chunk(ChunkError::TooManyCandidates))
        );
        assert_eq!(
            g.candidates(8, 1).err(),
            Some(DecodeError::Chunk(ChunkError::TotalTooLong))
        );
        let many: Vec<(&[u8], &[u8])> = (0..200).map(|_| (&b"__Host-s.1"[..], &b"x"[..])).collect();
        assert!(matches!(
            gather(&n, many),
            Err(DecodeError::Chunk(ChunkError::TooMany))
        ));
        let long = vec![b'a'; 100_000];
        assert!(matches!(
            gather(&n, [(&b"__Host-s"[..], &long[..])]),
            Err(DecodeError::Chunk(ChunkError::TooLong))
        ));
    }

    /// `n` distinct values of chunk `at` (the attacker's authentic-looking one at `position`,
    /// the others junk) next to one value of every other chunk of a `count`-chunk set.
    fn tossed(count: usize, at: usize, n: usize, position: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let n_ = names();
        let mut pairs = Vec::new();
        for i in 0..count {
            let value = if i == 0 {
                format!("{count}.victim0")
            } else {
                format!("victim{i}")
            };
            if i != at {
                pairs.push((n_.get(i).as_bytes().to_vec(), value.into_bytes()));
            }
        }
        let mut planted: Vec<Vec<u8>> = (0..n)
            .map(|j| {
                let v = if j == position {
                    "attacker".to_owned()
                } else {
                    format!("junk{j}")
                };
                if at == 0 { format!("{count}.{v}") } else { v }.into_bytes()
            })
            .collect();
        // The victim's own value comes last, as a browser sends the shorter Path last.
        if let Some(last) = planted.last_mut() {
            *last = if at == 0 {
                format!("{count}.victim0")
            } else {
                format!("victim{at}")
            }
            .into_bytes();
        }
        let mut out: Vec<_> = planted
            .drain(..)
            .map(|v| (n_.get(at).as_bytes().to_vec(), v))
            .collect();
        out.extend(pairs);
        out
    }

    fn gathered(pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<Option<Gathered<'_>>, DecodeError> {
        gather(
            &names(),
            pairs.iter().map(|(a, b)| (a.as_slice(), b.as_slice())),
        )
    }

    #[test]
    fn a1_more_distinct_values_than_the_cap_is_ambiguous_never_truncated() {
        // (count, chunk index flooded, most values that keep the request under 64 cookies)
        for (count, at) in [(1, 0), (3, 0), (3, 1), (5, 2)] {
            let most = MAX_OUR_COOKIES - (count - 1);
            for n in MAX_DUPLICATES + 1..=most {
                for position in 0..n - 1 {
                    let pairs = tossed(count, at, n, position);
                    assert_eq!(
                        gathered(&pairs).err(),
                        Some(DecodeError::Ambiguous),
                        "count {count}, chunk {at}, {n} values, attacker at {position}"
                    );
                }
            }
            // One more value crosses the 64-cookie bound first: still no session.
            let pairs = tossed(count, at, most + 1, 0);
            assert_eq!(
                gathered(&pairs).err(),
                Some(DecodeError::Chunk(ChunkError::TooMany))
            );
            // At the cap every value is kept and tried, the victim's included.
            for position in 0..MAX_DUPLICATES - 1 {
                let pairs = tossed(count, at, MAX_DUPLICATES, position);
                let g = gathered(&pairs).unwrap().unwrap();
                let c = g.candidates(8, 10_000).unwrap();
                assert_eq!(c.len(), MAX_DUPLICATES, "count {count}, chunk {at}");
                let victim = if at == 0 {
                    "victim0".to_owned()
                } else {
                    format!("victim{at}")
                };
                assert!(
                    c.iter()
                        .any(|c| c.pieces.get(at) == Some(&victim.as_bytes())),
                    "the victim's value is a candidate"
                );
            }
        }
        // Identical copies still count once, however many.
        let mut pairs = tossed(3, 1, 2, 0);
        for _ in 0..40 {
            pairs.push((b"__Host-s.1".to_vec(), b"victim1".to_vec()));
        }
        assert!(gathered(&pairs).unwrap().is_some());
    }

    #[test]
    fn a1_the_flood_may_come_after_the_victim_too() {
        // The victim's set first, then 4 planted values of chunk 1: 5 distinct → ambiguous.
        let mut pairs = vec![
            (b"__Host-s".to_vec(), b"2.ab".to_vec()),
            (b"__Host-s.1".to_vec(), b"cd".to_vec()),
        ];
        for j in 0..4 {
            pairs.push((b"__Host-s.1".to_vec(), format!("junk{j}").into_bytes()));
        }
        assert_eq!(gathered(&pairs).err(), Some(DecodeError::Ambiguous));
        pairs.pop();
        assert_eq!(
            gathered(&pairs)
                .unwrap()
                .unwrap()
                .candidates(8, 100)
                .unwrap()
                .len(),
            4
        );
    }

    #[test]
    fn b3_every_combination_counts_towards_the_candidate_cap() {
        // Two chunk-0 values whose sets each form 4 combinations; the first set's are all over
        // the total budget. All 8 count: a ninth is `chunk.candidates`.
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (
                b"__Host-s".to_vec(),
                b"3.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
            ),
            (b"__Host-s".to_vec(), b"3.a".to_vec()),
            (b"__Host-s.1".to_vec(), b"b".to_vec()),
            (b"__Host-s.1".to_vec(), b"c".to_vec()),
            (b"__Host-s.2".to_vec(), b"d".to_vec()),
            (b"__Host-s.2".to_vec(), b"e".to_vec()),
        ];
        let g = gathered(&pairs).unwrap().unwrap();
        assert_eq!(g.candidates(8, 20).unwrap().len(), 4);
        assert_eq!(
            g.candidates(7, 20).err(),
            Some(DecodeError::Chunk(ChunkError::TooManyCandidates))
        );
    }

    #[test]
    fn b5_only_space_and_tab_are_trimmed() {
        let raw: &[u8] = b" \t__Host-s\t= 1.x\t ;\x0b__Host-s=1.y; __Host-s=\x0c1.z\r";
        let pairs: Vec<_> = cookie_pairs([raw]).collect();
        assert_eq!(
            pairs,
            vec![
                (&b"__Host-s"[..], &b"1.x"[..]),
                (&b"\x0b__Host-s"[..], &b"1.y"[..]),
                (&b"__Host-s"[..], &b"\x0c1.z\r"[..]),
            ]
        );
        // Quotes are part of the value; a pair without `=` is no cookie at all.
        let pairs: Vec<_> = cookie_pairs([&b"__Host-s=\"1.x\"; __Host-s"[..]]).collect();
        assert_eq!(pairs, vec![(&b"__Host-s"[..], &b"\"1.x\""[..])]);
        // Several header lines are one list of pairs, in order.
        let pairs: Vec<_> = cookie_pairs([&b"a=1"[..], &b"b=2; c=3"[..]]).collect();
        assert_eq!(pairs.len(), 3);
    }

    #[test]
    fn cookie_pairs_survive_garbage() {
        let raw: &[u8] = b"a=1; \xff\xfe=\x80; name-only; =nameless;__Host-s = 1.x ;b=";
        let pairs: Vec<_> = cookie_pairs([raw]).collect();
        assert!(pairs.contains(&(&b"__Host-s"[..], &b"1.x"[..])));
        assert!(pairs.contains(&(&b""[..], &b"nameless"[..])));
        assert!(pairs.contains(&(&b"b"[..], &b""[..])));
        assert_eq!(pairs.len(), 5);
    }
}
