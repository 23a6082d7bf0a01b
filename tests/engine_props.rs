//! Property tests: on random route tables, `engine::select` agrees with a reference written
//! separately and as plainly as possible.
//!
//! The reference works on the key strings, never on the engine's types: it matches a path by
//! walking the string, applies row 3 as a filter (`ANY` drops out where the request's method is
//! defined on the same path) where the engine ranks instead (row 7), and scores each candidate
//! with one explicit tuple. It also computes ambiguity (row 14) and the `[?]` readings (rows 10,
//! 11, 13) the answer rests on, so those fields are compared too.

use proptest::prelude::*;
use specgen::engine::{self, RouteKey, Rule};

/// The other readings of rows 10, 11 and 13; all `false` is what the engine assumes.
#[derive(Clone, Copy, Default)]
struct Readings {
    empty: bool,
    bare: bool,
    fold: bool,
}

fn same(r: Readings, a: &str, b: &str) -> bool {
    if r.fold { a.eq_ignore_ascii_case(b) } else { a == b }
}

/// The variables a path binds to `pattern` (the key's path), or `None` when it does not match.
fn bind(pattern: &str, path: &str, r: Readings) -> Option<Vec<(String, String)>> {
    if pattern == "/" {
        return (path == "/").then(Vec::new);
    }
    let mut rest = path;
    let mut bound = Vec::new();
    for piece in pattern[1..].split('/') {
        if let Some(name) = piece.strip_prefix('{').and_then(|p| p.strip_suffix("+}")) {
            // Greedy: whatever follows, from after the next slash to the end.
            let value = match rest.strip_prefix('/') {
                Some(tail) if !tail.is_empty() || r.empty => tail,
                Some(_) => return None,
                None if rest.is_empty() && r.bare => "",
                None => return None,
            };
            bound.push((name.to_string(), value.to_string()));
            return Some(bound);
        }
        let tail = rest.strip_prefix('/')?;
        let end = tail.find('/').unwrap_or(tail.len());
        let (chunk, after) = tail.split_at(end);
        if let Some(name) = piece.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if chunk.is_empty() && !r.empty {
                return None;
            }
            bound.push((name.to_string(), chunk.to_string()));
        } else if !same(r, piece, chunk) {
            return None;
        }
        rest = after;
    }
    rest.is_empty().then_some(bound)
}

/// The key's path with variable names blanked out.
fn shape(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|p| match (p.starts_with('{'), p.ends_with("+}")) {
            (true, true) => "*",
            (true, false) => "?",
            _ => p,
        })
        .collect::<Vec<_>>()
        .join("/")
}

struct Scored {
    index: usize,
    tier: u8,
    path: String,
    specific: bool,
}

/// Every route that takes the request under `r`, with its score.
fn candidates(keys: &[String], method: &str, path: &str, r: Readings) -> Vec<Scored> {
    let split = |k: &String| -> Option<(String, String)> {
        k.split_once(' ').map(|(m, p)| (m.to_string(), p.to_string()))
    };
    let mut out = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        let Some((m, pattern)) = split(key) else {
            out.push(Scored { index, tier: 0, path: String::new(), specific: false });
            continue;
        };
        if bind(&pattern, path, r).is_none() {
            continue;
        }
        if m == "ANY" {
            // Row 3: ANY does not stand for a method defined on the same path.
            let defined = keys.iter().filter_map(split).any(|(m2, p2)| {
                m2 != "ANY" && same(r, &m2, method) && shape(&p2) == shape(&pattern)
            });
            if defined {
                continue;
            }
        } else if !same(r, &m, method) {
            continue;
        }
        // Letters that sort literal > variable > greedy, one per segment.
        let path: String = pattern
            .split('/')
            .skip(1)
            .filter(|p| !p.is_empty())
            .map(|p| match (p.starts_with('{'), p.ends_with("+}")) {
                (true, true) => 'a',
                (true, false) => 'b',
                _ => 'c',
            })
            .collect();
        let tier = if path.ends_with('a') { 1 } else { 2 };
        out.push(Scored { index, tier, path, specific: m != "ANY" });
    }
    out
}

fn best_by<K: Ord>(c: &[Scored], key: impl Fn(&Scored) -> K) -> Option<&Scored> {
    // Ties go to the first listed, so compare with the index reversed.
    c.iter().max_by_key(|s| (key(s), std::cmp::Reverse(s.index)))
}

fn reference_winner(keys: &[String], method: &str, path: &str, r: Readings) -> Option<usize> {
    let c = candidates(keys, method, path, r);
    best_by(&c, |s| (s.tier, s.path.clone(), s.specific)).map(|s| s.index)
}

/// `(path-first winner, method-first winner)` within the winner's tier, when they differ.
fn reference_ambiguity(keys: &[String], method: &str, path: &str) -> Option<(usize, usize)> {
    let c = candidates(keys, method, path, Readings::default());
    let w = best_by(&c, |s| (s.tier, s.path.clone(), s.specific))?;
    let same_tier: Vec<Scored> = c
        .iter()
        .filter(|s| s.tier == w.tier)
        .map(|s| Scored {
            index: s.index,
            tier: s.tier,
            path: s.path.clone(),
            specific: s.specific,
        })
        .collect();
    let m = best_by(&same_tier, |s| (s.specific, s.path.clone()))?;
    if m.index != w.index {
        return Some((w.index, m.index));
    }
    // Crossed: each route has a literal ('c') where the other has a variable ('b').
    let crossed = |s: &Scored| {
        let pairs: Vec<(char, char)> = w.path.chars().zip(s.path.chars()).collect();
        pairs.contains(&('c', 'b')) && pairs.contains(&('b', 'c'))
    };
    let others: Vec<Scored> =
        same_tier.into_iter().filter(|s| s.index != w.index && crossed(s)).collect();
    best_by(&others, |s| (s.tier, s.path.clone(), s.specific)).map(|s| (w.index, s.index))
}

/// The rows whose other reading changes the winner, alone or with other rows read otherwise.
fn reference_assumptions(keys: &[String], method: &str, path: &str) -> Vec<Rule> {
    let reading = |empty, bare, fold| Readings { empty, bare, fold };
    let winner = |r| reference_winner(keys, method, path, r);
    let bools = [false, true];
    let mut rules = Vec::new();
    let row10 = bools.iter().any(|&b| {
        bools.iter().any(|&f| winner(reading(false, b, f)) != winner(reading(true, b, f)))
    });
    let row11 = bools.iter().any(|&e| {
        bools.iter().any(|&f| winner(reading(e, false, f)) != winner(reading(e, true, f)))
    });
    let row13 = bools.iter().any(|&e| {
        bools.iter().any(|&b| winner(reading(e, b, false)) != winner(reading(e, b, true)))
    });
    for (flag, rule) in [
        (row10, Rule::GreedyNeedsRemainder),
        (row11, Rule::GreedyNotBare),
        (row13, Rule::CaseSensitive),
    ] {
        if flag {
            rules.push(rule);
        }
    }
    rules
}

fn route_key() -> impl Strategy<Value = String> {
    let method = prop::sample::select(vec!["GET", "POST", "OPTIONS", "ANY"]);
    let segment = prop_oneof![
        3 => prop::sample::select(vec!["a", "api"]).prop_map(str::to_string),
        2 => prop::sample::select(vec!["x", "y"]).prop_map(|n| format!("{{{n}}}")),
    ];
    let greedy = prop_oneof![2 => Just(""), 1 => prop::sample::select(vec!["proxy", "rest"])];
    (method, prop::collection::vec(segment, 0..3), greedy).prop_map(|(m, segments, greedy)| {
        // Number variable names by position so that a key never repeats one.
        let mut pieces: Vec<String> = segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if s.starts_with('{') {
                    format!("{{{}{i}}}", &s[1..s.len() - 1])
                } else {
                    s.clone()
                }
            })
            .collect();
        if !greedy.is_empty() {
            pieces.push(format!("{{{greedy}+}}"));
        }
        format!("{m} /{}", pieces.join("/"))
    })
}

/// Routes over one base path, each with some segments made variables or a greedy tail: tables
/// where many routes compete for the same requests.
fn family() -> impl Strategy<Value = (Vec<String>, String)> {
    let base = prop::collection::vec(prop::sample::select(vec!["a", "api"]), 1..4);
    let method = prop::sample::select(vec!["GET", "POST", "ANY"]);
    let route = (method, any::<u8>(), 0..4usize);
    (base, prop::collection::vec(route, 1..6)).prop_map(|(base, routes)| {
        let keys = routes
            .into_iter()
            .map(|(method, vars, greedy_at)| {
                let mut pieces: Vec<String> = base
                    .iter()
                    .enumerate()
                    .map(
                        |(i, l)| {
                            if vars & (1 << i) != 0 { format!("{{v{i}}}") } else { l.to_string() }
                        },
                    )
                    .collect();
                if greedy_at < pieces.len() {
                    pieces.truncate(greedy_at);
                    pieces.push("{proxy+}".to_string());
                }
                format!("{method} /{}", pieces.join("/"))
            })
            .collect();
        (keys, format!("/{}", base.join("/")))
    })
}

fn with_default(mut keys: Vec<String>, at: Option<usize>) -> Vec<String> {
    if let Some(at) = at {
        keys.insert(at.min(keys.len()), "$default".to_string());
    }
    keys
}

fn table() -> impl Strategy<Value = Vec<String>> {
    let tables = prop_oneof![prop::collection::vec(route_key(), 0..8), family().prop_map(|f| f.0)];
    (tables, prop::option::of(0..8usize)).prop_map(|(keys, at)| with_default(keys, at))
}

const METHODS: [&str; 5] = ["GET", "POST", "OPTIONS", "DELETE", "get"];
const PIECES: [&str; 7] = ["a", "b", "api", "A", "Api", "c", ""];

/// Any request over a small alphabet, most of which no route matches.
fn any_request() -> impl Strategy<Value = (String, String)> {
    let piece = prop::sample::select(PIECES.to_vec());
    (prop::sample::select(METHODS.to_vec()), prop::collection::vec(piece, 0..4))
        .prop_map(|(m, pieces)| (m.to_string(), format!("/{}", pieces.join("/"))))
}

/// A request aimed at one route of the table, so that several routes compete for it: its
/// variables filled in, and sometimes its greedy part dropped (row 11) or emptied (row 10).
fn aimed_request(keys: &[String]) -> BoxedStrategy<(String, String)> {
    let patterns: Vec<String> =
        keys.iter().filter_map(|k| k.split_once(' ').map(|(_, p)| p.to_string())).collect();
    if patterns.is_empty() {
        return any_request().boxed();
    }
    let fill = prop::collection::vec(prop::sample::select(PIECES[..4].to_vec()), 4);
    let tail = prop::sample::select(vec!["x", "x/y", "", "<bare>"]);
    (prop::sample::select(patterns), prop::sample::select(METHODS.to_vec()), fill, tail)
        .prop_map(|(pattern, method, fill, tail)| {
            let mut path = String::new();
            for (i, piece) in pattern.split('/').skip(1).filter(|p| !p.is_empty()).enumerate() {
                match (piece.starts_with('{'), piece.ends_with("+}")) {
                    (true, true) if tail == "<bare>" => {}
                    (true, true) => path = format!("{path}/{tail}"),
                    (true, false) => path = format!("{path}/{}", fill[i]),
                    _ => path = format!("{path}/{piece}"),
                }
            }
            let path = if path.is_empty() { "/".to_string() } else { path };
            (method.to_string(), path)
        })
        .boxed()
}

/// A table and a request for it: any request, one aimed at a route, or a family's base path.
fn case() -> impl Strategy<Value = (Vec<String>, (String, String))> {
    let random = table().prop_flat_map(|keys| {
        let request = prop_oneof![any_request().boxed(), aimed_request(&keys)];
        (Just(keys), request)
    });
    let family = (family(), prop::option::of(0..8usize)).prop_flat_map(|((keys, base), at)| {
        let keys = with_default(keys, at);
        let base = (prop::sample::select(METHODS.to_vec()), Just(base))
            .prop_map(|(m, path)| (m.to_string(), path));
        let request = prop_oneof![base.boxed(), aimed_request(&keys)];
        (Just(keys), request)
    });
    prop_oneof![random, family]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn select_agrees_with_the_reference((keys, (method, path)) in case()) {
        let parsed: Vec<RouteKey> = keys.iter().map(|k| RouteKey::parse(k).unwrap()).collect();
        let s = engine::select(&parsed, &method, &path);

        // The engine breaks row 14's tie by path, like the reference's main score, so winners
        // agree even on ambiguous tables; the ambiguity itself must agree too.
        let expected = reference_winner(&keys, &method, &path, Readings::default());
        prop_assert_eq!(s.winner, expected, "steps: {:#?}", s.steps);
        prop_assert_eq!(
            s.ambiguous.map(|(w, r, _)| (w, r)),
            reference_ambiguity(&keys, &method, &path)
        );
        prop_assert_eq!(&s.assumptions, &reference_assumptions(&keys, &method, &path));
    }

    #[test]
    fn parameters_rebuild_the_path((keys, (method, path)) in case()) {
        let parsed: Vec<RouteKey> = keys.iter().map(|k| RouteKey::parse(k).unwrap()).collect();
        let s = engine::select(&parsed, &method, &path);

        match s.winner.map(|w| &keys[w]) {
            None => prop_assert!(s.steps.iter().any(|st| st.rule == Rule::NotFound)),
            Some(key) if key == "$default" => prop_assert!(s.path_parameters.is_empty()),
            Some(key) => {
                let (_, pattern) = key.split_once(' ').unwrap();
                let mut rebuilt = pattern.to_string();
                for (name, value) in &s.path_parameters {
                    prop_assert!(!value.is_empty(), "row 10: {} bound empty", name);
                    rebuilt = rebuilt
                        .replace(&format!("{{{name}+}}"), value)
                        .replace(&format!("{{{name}}}"), value);
                }
                prop_assert_eq!(rebuilt, path.clone());
            }
        }

        // Runners-up are the other routes that match, each once, never the winner.
        let mut seen = s.runners_up.clone();
        seen.sort_unstable();
        seen.dedup();
        prop_assert_eq!(seen.len(), s.runners_up.len());
        prop_assert!(s.winner.is_none_or(|w| !s.runners_up.contains(&w)));
        prop_assert!(s.winner.is_some() || s.runners_up.is_empty());
    }

    #[test]
    fn duplicates_are_keys_with_one_shape(keys in table()) {
        let parsed: Vec<RouteKey> = keys.iter().map(|k| RouteKey::parse(k).unwrap()).collect();
        for (i, j) in engine::duplicate_keys(&parsed) {
            prop_assert!(i < j);
            let blank = |k: &str| match k.split_once(' ') {
                Some((m, p)) => format!("{m} {}", shape(p)),
                None => k.to_string(),
            };
            prop_assert_eq!(blank(&keys[i]), blank(&keys[j]));
        }
        let count = (0..keys.len())
            .flat_map(|i| (i + 1..keys.len()).map(move |j| (i, j)))
            .filter(|&(i, j)| {
                let blank = |k: &str| k.split_once(' ').map(|(m, p)| format!("{m} {}", shape(p)));
                blank(&keys[i]) == blank(&keys[j])
            })
            .count();
        prop_assert_eq!(engine::duplicate_keys(&parsed).len(), count);
    }

    #[test]
    fn keys_print_as_parsed(keys in table()) {
        for key in &keys {
            prop_assert_eq!(&RouteKey::parse(key).unwrap().to_string(), key);
        }
    }
}
