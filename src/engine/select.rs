//! Route selection within one stage: which route key wins a request, and why.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use super::key::{Method, RouteKey, Segment};
use super::rule::Rule;

/// The outcome of one route selection, with the chain of rules that led to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Index of the winning route; `None` means `404 {"message":"Not Found"}`.
    pub winner: Option<usize>,
    /// The rules applied, in the order a reader should follow them.
    pub steps: Vec<Step>,
    /// The other routes that matched the request and lost, best first.
    pub runners_up: Vec<usize>,
    /// The `[?]` rows on how a request is read (10, 11, 13) that the answer rests on: read that
    /// row the other way, alone or together with another of them, and the winner changes.
    pub assumptions: Vec<Rule>,
    /// `(winner, rival, rule)` when the winner rests on an undocumented precedence (row 14): the
    /// rival wins if method specificity counts before path specificity.
    pub ambiguous: Option<(usize, usize, Rule)>,
    /// The winner's variables and what they captured: a segment, or the remainder for `{name+}`.
    pub path_parameters: BTreeMap<String, String>,
}

/// One rule applied during a selection, with a note naming the routes and path it concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub rule: Rule,
    pub note: String,
}

/// Which route of one stage's table wins `method path`.
///
/// `path` is the path the route table sees (see [`strip_entry`](super::strip_entry)), already
/// percent-decoded as API Gateway hands it on (row 15); an empty path is read as `/`. `method` is
/// the request's method as sent. Routes are ranked by tier (exact, greedy, `$default`), then by
/// path specificity segment by segment from the left, then method over `ANY`, then position in
/// the table, which only decides between duplicates.
pub fn select(routes: &[RouteKey], method: &str, path: &str) -> Selection {
    let path = normalise(path);
    let request = Request { method, segments: split_path(&path) };

    let ranked = rank(routes, &request, Reading::ASSUMED);
    let winner = ranked.first();
    let runners_up = ranked.iter().skip(1).map(|c| c.index).collect();
    let ambiguous = winner.and_then(|w| rival(w, &ranked));
    let (assumptions, pivots) = assumptions(routes, &request, winner.map(|w| w.index));
    let path_parameters = winner.map(|w| w.params.iter().cloned().collect()).unwrap_or_default();

    let explain = Explain { routes, request: &request, path: &path, ranked: &ranked };
    let mut steps = explain.near_misses();
    steps.extend(explain.verdict());
    steps.extend(explain.losers());
    if let Some((w, r, rule)) = ambiguous {
        steps.push(explain.ambiguity(w, r, rule));
    }
    steps.extend(pivots.into_iter().map(|p| explain.assumption(p)));

    Selection {
        winner: winner.map(|w| w.index),
        steps,
        runners_up,
        assumptions,
        ambiguous,
        path_parameters,
    }
}

fn normalise(path: &str) -> String {
    if path.starts_with('/') { path.to_owned() } else { format!("/{path}") }
}

/// The request's path segments: what lies between its slashes, so `/` is one empty segment and
/// a trailing slash leaves an empty last one. The root route key, with no segments, matches `/`.
fn split_path(path: &str) -> Vec<&str> {
    path[1..].split('/').collect()
}

struct Request<'a> {
    method: &'a str,
    segments: Vec<&'a str>,
}

/// How a request is read. The assumed reading is all `false`; each flag is the other reading of
/// one `[?]` row, tried to learn whether an answer rests on that row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reading {
    /// Row 10 read the other way: a variable may bind an empty remainder or segment.
    empty_binds: bool,
    /// Row 11 read the other way: `/p/{proxy+}` matches the bare `/p`, binding `""`.
    bare_binds: bool,
    /// Row 13 read the other way: literals and methods compare ASCII case-insensitively.
    fold_case: bool,
}

impl Reading {
    const ASSUMED: Reading = Reading { empty_binds: false, bare_binds: false, fold_case: false };

    /// The `[?]` rows a reading can flip; bit i of [`Reading::from_bits`] flips `ROWS[i]`.
    const ROWS: [Rule; 3] = [Rule::GreedyNeedsRemainder, Rule::GreedyNotBare, Rule::CaseSensitive];

    /// The reading that flips the rows whose bits are set in `bits`.
    fn from_bits(bits: u8) -> Reading {
        Reading { empty_binds: bits & 1 != 0, bare_binds: bits & 2 != 0, fold_case: bits & 4 != 0 }
    }

    fn same(self, a: &str, b: &str) -> bool {
        if self.fold_case { a.eq_ignore_ascii_case(b) } else { a == b }
    }
}

/// A route that matched, with what decides its rank.
#[derive(Debug, Clone)]
struct Candidate {
    index: usize,
    /// 2 exact, 1 greedy, 0 `$default` (row 2).
    tier: u8,
    /// Per segment from the left: 2 literal, 1 variable, 0 the greedy variable (rows 6 and 8).
    /// No rank is a proper prefix of another, since only a greedy segment ranks 0 and it is last.
    path: Vec<u8>,
    /// A method-specific route rather than `ANY` or `$default` (row 7).
    specific: bool,
    params: Vec<(String, String)>,
}

impl Candidate {
    fn key(&self) -> (u8, &[u8], bool, Reverse<usize>) {
        (self.tier, &self.path, self.specific, Reverse(self.index))
    }

    /// The order if method specificity counted before the path: row 14's other answer.
    fn method_first_key(&self) -> (u8, bool, &[u8], Reverse<usize>) {
        (self.tier, self.specific, &self.path, Reverse(self.index))
    }
}

/// Every route that matches the request under `reading`, best first.
fn rank(routes: &[RouteKey], request: &Request, reading: Reading) -> Vec<Candidate> {
    let mut ranked: Vec<Candidate> = routes
        .iter()
        .enumerate()
        .filter_map(|(index, route)| candidate(index, route, request, reading))
        .collect();
    ranked.sort_by(|a, b| b.key().cmp(&a.key()));
    ranked
}

fn candidate(index: usize, route: &RouteKey, req: &Request, reading: Reading) -> Option<Candidate> {
    let RouteKey::Route { method, segments } = route else {
        return Some(Candidate {
            index,
            tier: 0,
            path: Vec::new(),
            specific: false,
            params: Vec::new(),
        });
    };
    if !method_fits(*method, req.method, reading) {
        return None;
    }
    let params = match_path(segments, &req.segments, reading).ok()?;

    let greedy = matches!(segments.last(), Some(Segment::Greedy(_)));
    let path = segments
        .iter()
        .map(|s| match s {
            Segment::Literal(_) => 2,
            Segment::Var(_) => 1,
            Segment::Greedy(_) => 0,
        })
        .collect();
    Some(Candidate {
        index,
        tier: if greedy { 1 } else { 2 },
        path,
        specific: *method != Method::Any,
        params,
    })
}

fn method_fits(route: Method, request: &str, reading: Reading) -> bool {
    route == Method::Any || reading.same(route.as_str(), request)
}

/// Why a route's path does not match: no fit at all, or only by one of the `[?]` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Miss {
    NoFit,
    /// Row 10: a variable would bind an empty remainder or segment.
    Empty,
    /// Row 11: a greedy route against its bare prefix.
    Bare,
}

fn match_path(
    route: &[Segment],
    request: &[&str],
    reading: Reading,
) -> Result<Vec<(String, String)>, Miss> {
    if route.is_empty() {
        return if request == [""] { Ok(Vec::new()) } else { Err(Miss::NoFit) };
    }
    let (prefix, greedy) = match route.split_last() {
        Some((Segment::Greedy(name), prefix)) => (prefix, Some(name)),
        _ => (route, None),
    };
    let fits_length = if greedy.is_some() {
        request.len() >= prefix.len()
    } else {
        request.len() == prefix.len()
    };
    if !fits_length {
        return Err(Miss::NoFit);
    }

    // Literals first, so that a path which does not fit at all is never blamed on a `[?]` row.
    let mut params = Vec::new();
    let mut empty = false;
    for (segment, &piece) in prefix.iter().zip(request) {
        match segment {
            Segment::Literal(literal) if !reading.same(literal, piece) => return Err(Miss::NoFit),
            Segment::Literal(_) => {}
            Segment::Var(name) => {
                empty |= piece.is_empty();
                params.push((name.clone(), piece.to_owned()));
            }
            Segment::Greedy(_) => unreachable!("a parsed key has its greedy variable last"),
        }
    }

    if empty && !reading.empty_binds {
        return Err(Miss::Empty);
    }
    let Some(name) = greedy else { return Ok(params) };

    // `/p` for `/p/{proxy+}` has no slash after the prefix (row 11); `/p/`, and `/` for
    // `/{proxy+}`, have one with nothing after it (row 10).
    let rest = &request[prefix.len()..];
    match rest {
        [] if !reading.bare_binds => return Err(Miss::Bare),
        [""] if !reading.empty_binds => return Err(Miss::Empty),
        _ => {}
    }
    params.push((name.clone(), rest.join("/")));
    Ok(params)
}

/// The best route of the winner's tier if method specificity counted first, when that differs.
fn rival(winner: &Candidate, ranked: &[Candidate]) -> Option<(usize, usize, Rule)> {
    let alternative = ranked
        .iter()
        .filter(|c| c.tier == winner.tier)
        .max_by(|a, b| a.method_first_key().cmp(&b.method_first_key()))?;
    if alternative.index != winner.index {
        let rule =
            if winner.tier == 1 { Rule::GreedyMethodVsPrefix } else { Rule::ExactMethodVsPath };
        return Some((winner.index, alternative.index, rule));
    }
    // Row 6 compares one literal with one variable at the same depth. When each route is the
    // more literal one at a different depth (`/a/{z}` and `/{x}/y` for `/a/y`), no row says
    // which wins, so the answer is not taken as true.
    let crossed = ranked
        .iter()
        .filter(|c| c.tier == winner.tier && c.index != winner.index)
        .find(|c| crosses(&winner.path, &c.path))?;
    Some((winner.index, crossed.index, Rule::CrossedSegments))
}

/// Whether each of two path ranks has a literal where the other has a variable.
fn crosses(a: &[u8], b: &[u8]) -> bool {
    let pairs = || a.iter().zip(b);
    pairs().any(|(x, y)| *x == 2 && *y == 1) && pairs().any(|(x, y)| *x == 1 && *y == 2)
}

/// A `[?]` row the answer rests on, shown by one reading: with the rows in `others` read the
/// other way (often none), the request goes to `now` under the assumed `rule`, `then` without it.
struct Pivot {
    rule: Rule,
    others: Vec<Rule>,
    now: Option<usize>,
    then: Option<usize>,
}

/// The rows of [`Reading::ROWS`] the winner rests on.
///
/// A row counts when flipping it changes the winner under some choice of the other rows, not
/// only under the assumed one: `/API/` against `ANY /api/{proxy+}` needs both row 10 and row
/// 13 read the other way before the route matches, so the 404 rests on both.
fn assumptions(
    routes: &[RouteKey],
    request: &Request,
    winner: Option<usize>,
) -> (Vec<Rule>, Vec<Pivot>) {
    let winners: Vec<Option<usize>> = (0..8u8)
        .map(|bits| match bits {
            0 => winner,
            _ => rank(routes, request, Reading::from_bits(bits)).first().map(|c| c.index),
        })
        .collect();

    let mut rules = Vec::new();
    let mut pivots = Vec::new();
    for (i, &rule) in Reading::ROWS.iter().enumerate() {
        let bit = 1u8 << i;
        let pivot = (0..8u8)
            .filter(|others| others & bit == 0)
            .find(|&others| winners[others as usize] != winners[(others | bit) as usize]);
        if let Some(others) = pivot {
            rules.push(rule);
            pivots.push(Pivot {
                rule,
                others: (0..3)
                    .filter(|j| others & (1 << j) != 0)
                    .map(|j| Reading::ROWS[j])
                    .collect(),
                now: winners[others as usize],
                then: winners[(others | bit) as usize],
            });
        }
    }
    (rules, pivots)
}

/// Writes the steps of a selection. Notes are lowercase sentence fragments that name routes in
/// backticks, like the diagnostics that quote them.
struct Explain<'a> {
    routes: &'a [RouteKey],
    request: &'a Request<'a>,
    path: &'a str,
    ranked: &'a [Candidate],
}

impl Explain<'_> {
    fn route(&self, index: Option<usize>) -> String {
        match index {
            Some(i) => format!("`{}`", self.routes[i]),
            None => "no route (404)".to_owned(),
        }
    }

    fn request(&self) -> String {
        format!("`{} {}`", self.request.method, self.path)
    }

    /// Routes passed over for a reason worth saying: a trailing slash (row 12), an empty
    /// remainder (row 10), a bare prefix (row 11), or the right path with another method (row 9).
    fn near_misses(&self) -> Vec<Step> {
        let mut steps = Vec::new();
        if self.path.len() > 1 && self.path.ends_with('/') {
            let trimmed = match self.path.trim_end_matches('/') {
                "" => "/",
                trimmed => trimmed,
            };
            let note = format!(
                "`{}` ends in `/`: it is another path than `{trimmed}`, and no route key ends \
                 in `/`",
                self.path
            );
            steps.push(Step { rule: Rule::TrailingSlashDistinct, note });
        }

        let winner_tier = self.ranked.first().map_or(0, |c| c.tier);
        for route in self.routes {
            let RouteKey::Route { method, segments } = route else { continue };
            let fits_method = method_fits(*method, self.request.method, Reading::ASSUMED);
            let miss = match_path(segments, &self.request.segments, Reading::ASSUMED).err();
            let greedy = matches!(segments.last(), Some(Segment::Greedy(_)));
            let step = match (miss, fits_method) {
                (Some(Miss::Empty), true) => Step {
                    rule: Rule::GreedyNeedsRemainder,
                    note: format!(
                        "`{route}` is passed over: `{}` would leave one of its variables empty",
                        self.path
                    ),
                },
                (Some(Miss::Bare), true) => Step {
                    rule: Rule::GreedyNotBare,
                    note: format!(
                        "`{route}` is passed over: `{}` is its bare prefix, with nothing after it",
                        self.path
                    ),
                },
                (None, false) if !greedy && winner_tier < 2 => Step {
                    rule: Rule::MethodMismatchFallsThrough,
                    note: format!(
                        "`{route}` has the path but not the method `{}`: the request falls through",
                        self.request.method
                    ),
                },
                _ => continue,
            };
            steps.push(step);
        }
        steps
    }

    /// Which tier took the request, or the 404.
    fn verdict(&self) -> Vec<Step> {
        let Some(winner) = self.ranked.first() else {
            let note =
                format!("no route matches {}: 404 {{\"message\":\"Not Found\"}}", self.request());
            return vec![Step { rule: Rule::NotFound, note }];
        };
        let route = self.route(Some(winner.index));
        let mut steps = vec![match winner.tier {
            2 => Step {
                rule: Rule::Tiers,
                note: format!("{route} matches {} exactly", self.request()),
            },
            1 => Step {
                rule: Rule::Tiers,
                note: format!("no exact route matches {}; {route} is greedy", self.request()),
            },
            _ => Step {
                rule: Rule::DefaultCatchesRest,
                note: format!(
                    "no other route matches {}, so `$default` takes it{}",
                    self.request(),
                    if self.request.method == "OPTIONS" { ", preflight or not" } else { "" }
                ),
            },
        }];
        if let RouteKey::Route { method: Method::Any, .. } = self.routes[winner.index] {
            let note = format!(
                "{route} stands for `{}`: no route defines that method on its path",
                self.request.method
            );
            steps.push(Step { rule: Rule::AnyStandsForUndefined, note });
        }
        steps
    }

    /// For each runner-up, the rule by which the winner beat it. A duplicate of the winner
    /// (refused by section 2 anyway) loses by position alone and gets no step.
    fn losers(&self) -> Vec<Step> {
        let Some((winner, rest)) = self.ranked.split_first() else { return Vec::new() };
        let w = self.route(Some(winner.index));
        rest.iter()
            .filter_map(|loser| {
                let l = self.route(Some(loser.index));
                let (rule, why) = self.beats(winner, loser)?;
                Some(Step { rule, note: format!("{w} beats {l}: {why}") })
            })
            .collect()
    }

    fn beats(&self, winner: &Candidate, loser: &Candidate) -> Option<(Rule, String)> {
        const TIER: [&str; 3] = ["`$default`", "a greedy route", "an exact route"];
        if winner.tier != loser.tier {
            let why = format!(
                "{} comes before {}",
                TIER[winner.tier as usize], TIER[loser.tier as usize]
            );
            return Some((Rule::Tiers, why));
        }

        let depth = winner.path.iter().zip(&loser.path).position(|(a, b)| a != b);
        if let Some(depth) = depth {
            let segment = |c: &Candidate| match &self.routes[c.index] {
                RouteKey::Route { segments, .. } => segments[depth].to_string(),
                RouteKey::Default => unreachable!("`$default` has no segments to differ in"),
            };
            let (ws, ls) = (segment(winner), segment(loser));
            return Some(if winner.path[depth] > 0 && loser.path[depth] > 0 {
                let why = format!("literal `{ws}` beats `{ls}` at segment {}", depth + 1);
                (Rule::LiteralOverVariable, why)
            } else {
                let why = format!("its prefix goes on with `{ws}` where the other's ends");
                (Rule::LongerGreedyPrefix, why)
            });
        }

        (winner.specific != loser.specific).then(|| {
            let why = format!(
                "on one path, `{}` comes before `ANY`, which stands only for methods not \
                 otherwise defined (row 3)",
                self.request.method
            );
            (Rule::MethodOverAny, why)
        })
    }

    fn ambiguity(&self, winner: usize, rival: usize, rule: Rule) -> Step {
        let note = format!(
            "{} has the more specific path and {} the specific method; AWS documents neither \
             order: the engine picks the path, and the table should be linted",
            self.route(Some(winner)),
            self.route(Some(rival))
        );
        Step { rule, note }
    }

    fn assumption(&self, pivot: Pivot) -> Step {
        let (now, then) = (self.route(pivot.now), self.route(pivot.then));
        let note = if pivot.others.is_empty() {
            format!(
                "the answer is assumed: if {}, {} would reach {then} rather than {now}",
                other_reading(pivot.rule),
                self.request()
            )
        } else {
            let others: Vec<&str> = pivot.others.iter().map(|&r| other_reading(r)).collect();
            format!(
                "the answer is assumed: if {}, {} would reach {now}, and {then} if also {}",
                others.join(" and "),
                self.request(),
                other_reading(pivot.rule)
            )
        };
        Step { rule: pivot.rule, note }
    }
}

/// The reading of a `[?]` row that the engine does not take, as a condition.
fn other_reading(rule: Rule) -> &'static str {
    match rule {
        Rule::GreedyNeedsRemainder => "a variable could bind an empty remainder",
        Rule::GreedyNotBare => "a greedy route matched its bare prefix",
        Rule::CaseSensitive => "case were ignored",
        _ => unreachable!("only rows 10, 11 and 13 are readings"),
    }
}
