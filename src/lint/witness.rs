//! Witness requests: a finite set of paths that between them show every way a route table
//! can treat a request, for the lints to run through the engine.
//!
//! A route table is finite, but the requests it sees are not. What a request does depends only
//! on which literals of which routes its segments equal, how many segments it has, and whether
//! it ends in `/`. So each route is instantiated with the literals of every other route at its
//! variable positions (where the two could meet), and with a fresh literal that no route uses
//! everywhere else; a greedy variable gets one and two segments of remainder. Each instance also
//! gets its trailing-slash twin and a child, and a greedy route its bare prefix and the prefix
//! with a trailing slash (rows 10 and 11). The root, one fresh segment and two fresh segments
//! stand for whatever no route names, which is where `$default` lives.

use std::collections::BTreeSet;

use crate::engine::{RouteKey, Segment};

/// The methods a request can have, in the order findings name them.
pub const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// A literal segment that no route uses: `zz`, or `zz1`, `zz2` and so on when a route does.
pub fn fresh_literal(routes: &[RouteKey]) -> String {
    let used: BTreeSet<&str> = routes
        .iter()
        .flat_map(|r| match r {
            RouteKey::Route { segments, .. } => segments.as_slice(),
            RouteKey::Default => &[],
        })
        .filter_map(|s| match s {
            Segment::Literal(l) => Some(l.as_str()),
            _ => None,
        })
        .collect();
    std::iter::once("zz".to_owned())
        .chain((1..).map(|n| format!("zz{n}")))
        .find(|candidate| !used.contains(candidate.as_str()))
        .expect("an unused literal exists")
}

/// Request paths that `route` matches, its variables filled with `donor`'s literal at the same
/// position where the donor has one and with `fresh` elsewhere. A greedy variable takes one
/// and two fresh segments, and the donor's own remainder when it goes on past the greedy
/// position. `$default` has no path, so no instance.
pub fn instances(route: &RouteKey, donor: Option<&RouteKey>, fresh: &str) -> Vec<String> {
    let RouteKey::Route { segments, .. } = route else { return Vec::new() };
    let donor: &[Segment] = match donor {
        Some(RouteKey::Route { segments, .. }) => segments,
        _ => &[],
    };
    let fill = |i: usize| match donor.get(i) {
        Some(Segment::Literal(l)) => l.clone(),
        _ => fresh.to_owned(),
    };

    let mut prefix = Vec::new();
    let mut greedy_at = None;
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Literal(l) => prefix.push(l.clone()),
            Segment::Var(_) => prefix.push(fill(i)),
            Segment::Greedy(_) => greedy_at = Some(i),
        }
    }
    let Some(at) = greedy_at else { return vec![join(&prefix)] };

    let mut tails = vec![vec![fresh.to_owned()], vec![fresh.to_owned(), fresh.to_owned()]];
    if donor.len() > at {
        tails.push((at..donor.len()).map(fill).collect());
    }
    let mut out: Vec<String> = Vec::new();
    for tail in tails {
        let path = join(&[prefix.clone(), tail].concat());
        if !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// The trailing-slash twin of `path` and one child of it. The root has no twin (`//` is no
/// one's path), and its child is the one fresh segment.
pub fn twins(path: &str, fresh: &str) -> Vec<String> {
    if path == "/" {
        return vec![format!("/{fresh}")];
    }
    vec![format!("{path}/"), format!("{path}/{fresh}")]
}

/// The paths that a greedy route only matches under the other reading of row 11 (its bare
/// prefix) or of row 10 (the prefix and a slash); none for other routes.
pub fn greedy_edges(route: &RouteKey, fresh: &str) -> Vec<String> {
    let RouteKey::Route { segments, .. } = route else { return Vec::new() };
    let Some((Segment::Greedy(_), prefix)) = segments.split_last() else { return Vec::new() };
    let prefix: Vec<String> = prefix
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => l.clone(),
            _ => fresh.to_owned(),
        })
        .collect();
    let bare = join(&prefix);
    if bare == "/" { vec![bare] } else { vec![format!("{bare}/"), bare] }
}

/// True when some request could match both routes: no position where both have different
/// literals, and lengths that fit (a greedy variable takes one segment or more).
pub fn could_meet(a: &RouteKey, b: &RouteKey) -> bool {
    let (RouteKey::Route { segments: a, .. }, RouteKey::Route { segments: b, .. }) = (a, b) else {
        return true;
    };
    let greedy = |s: &[Segment]| matches!(s.last(), Some(Segment::Greedy(_)));
    let fits = match (greedy(a), greedy(b)) {
        (false, false) => a.len() == b.len(),
        (true, false) => b.len() >= a.len(),
        (false, true) => a.len() >= b.len(),
        (true, true) => true,
    };
    fits && a.iter().zip(b).all(|pair| match pair {
        (Segment::Literal(x), Segment::Literal(y)) => x == y,
        _ => true,
    })
}

/// Every witness path of a route table, sorted and without repeats: the root, one and two
/// fresh segments, each route's instances with every route it could meet as donor (and none),
/// their twins, and the edges of greedy routes.
pub fn paths(routes: &[RouteKey]) -> Vec<String> {
    let fresh = fresh_literal(routes);
    let mut out: BTreeSet<String> =
        ["/".to_owned(), format!("/{fresh}"), format!("/{fresh}/{fresh}")].into();
    for route in routes {
        let donors = routes.iter().filter(|d| *d != route && could_meet(route, d));
        let mut own: Vec<String> = instances(route, None, &fresh);
        for donor in donors {
            own.extend(instances(route, Some(donor), &fresh));
        }
        for path in own {
            out.extend(twins(&path, &fresh));
            out.insert(path);
        }
        out.extend(greedy_edges(route, &fresh));
    }
    out.into_iter().collect()
}

fn join(segments: &[String]) -> String {
    if segments.is_empty() {
        return "/".to_owned();
    }
    segments.iter().map(|s| format!("/{s}")).collect()
}
