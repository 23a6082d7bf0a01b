//! Golden table for the route-selection engine: each test is one row of reference section 1 (or
//! a rule of section 2), named with the row's number and tag (`doc`, `obs`, `q` for `[?]`).

use specgen::engine::{
    self, Entry, KeyErrorKind, Method, NotServed, RouteKey, Rule, Segment, Selection,
};

/// What a request should come to: the winning key, or `None` for the 404.
struct Expect {
    method: &'static str,
    path: &'static str,
    route: Option<&'static str>,
}

const fn req(method: &'static str, path: &'static str, route: Option<&'static str>) -> Expect {
    Expect { method, path, route }
}

fn keys(routes: &[&str]) -> Vec<RouteKey> {
    routes.iter().map(|r| RouteKey::parse(r).unwrap_or_else(|e| panic!("{r}: {e}"))).collect()
}

fn winner(routes: &[RouteKey], s: &Selection) -> Option<String> {
    s.winner.map(|i| routes[i].to_string())
}

/// Runs every request against the table and checks the winner, returning the selections.
fn check(routes: &[&str], cases: &[Expect]) -> Vec<Selection> {
    let routes = keys(routes);
    cases
        .iter()
        .map(|c| {
            let s = engine::select(&routes, c.method, c.path);
            assert_eq!(
                winner(&routes, &s).as_deref(),
                c.route,
                "{} {}: steps {:#?}",
                c.method,
                c.path,
                s.steps
            );
            s
        })
        .collect()
}

fn has_step(s: &Selection, rule: Rule) -> bool {
    s.steps.iter().any(|step| step.rule == rule)
}

#[test]
fn row01_doc_stage_is_chosen_first() {
    let prod = Entry::ApiEndpoint { stage: Some("prod".into()) };
    assert_eq!(engine::strip_entry(&prod, "/prod/pets/1").unwrap(), "/pets/1");
    assert_eq!(engine::strip_entry(&prod, "/prod").unwrap(), "/");
    assert_eq!(engine::strip_entry(&prod, "/prod/").unwrap(), "/");

    // Not the stage's name: the request is for `$default`, which is not deployed. This is why a
    // named stage cannot serve the root well-known URLs (section 3).
    let err = engine::strip_entry(&prod, "/.well-known/oauth-protected-resource").unwrap_err();
    assert!(matches!(err, NotServed::OtherStage { .. }));
    assert_eq!(err.rule(), Some(Rule::StageFirst));
    assert!(engine::strip_entry(&prod, "/production/x").is_err());
    assert!(engine::strip_entry(&prod, "/Prod/x").is_err(), "row 13: case-sensitive");

    let default = Entry::ApiEndpoint { stage: None };
    assert_eq!(engine::strip_entry(&default, "/prod/pets").unwrap(), "/prod/pets");
    assert_eq!(engine::strip_entry(&default, "/").unwrap(), "/");
}

#[test]
fn section3_custom_domain_skips_stage_selection() {
    let empty = Entry::CustomDomain { mapping_key: String::new() };
    assert_eq!(engine::strip_entry(&empty, "/.well-known/x").unwrap(), "/.well-known/x");
    assert_eq!(engine::strip_entry(&empty, "").unwrap(), "/");

    let v1 = Entry::CustomDomain { mapping_key: "v1".into() };
    assert_eq!(engine::strip_entry(&v1, "/v1/pets").unwrap(), "/pets");
    assert_eq!(engine::strip_entry(&v1, "/v1").unwrap(), "/", "an empty rawPath is read as /");
    let err = engine::strip_entry(&v1, "/v2/pets").unwrap_err();
    assert!(matches!(err, NotServed::MappingKeyNotPrefix { .. }));
    assert!(engine::strip_entry(&v1, "/v10/pets").is_err());

    let nested = Entry::CustomDomain { mapping_key: "v1/orders".into() };
    assert_eq!(engine::strip_entry(&nested, "/v1/orders/7").unwrap(), "/7");
    assert!(engine::strip_entry(&nested, "/v1/pets").is_err());
}

#[test]
fn row02_doc_exact_then_greedy_then_default_else_404() {
    let with_default = ["$default", "GET /{proxy+}", "GET /a"];
    let s = check(
        &with_default,
        &[
            req("GET", "/a", Some("GET /a")),
            req("GET", "/b", Some("GET /{proxy+}")),
            req("POST", "/a", Some("$default")),
        ],
    );
    assert!(has_step(&s[0], Rule::Tiers));
    assert_eq!(s[0].runners_up, [1, 0], "greedy, then $default, best first");

    let s = check(&["GET /a"], &[req("POST", "/a", None), req("GET", "/b", None)]);
    assert!(has_step(&s[0], Rule::NotFound), "a 404, not a 405");
    assert!(s[0].runners_up.is_empty() && s[0].path_parameters.is_empty());
}

#[test]
fn row03_doc_any_stands_for_methods_not_otherwise_defined() {
    let s = check(
        &["ANY /x", "GET /x"],
        &[
            req("GET", "/x", Some("GET /x")),
            req("POST", "/x", Some("ANY /x")),
            req("DELETE", "/x", Some("ANY /x")),
            req("PROPFIND", "/x", Some("ANY /x")),
        ],
    );
    assert!(has_step(&s[1], Rule::AnyStandsForUndefined));
    assert!(!has_step(&s[0], Rule::AnyStandsForUndefined));
}

#[test]
fn row04_doc_aws_worked_example() {
    let routes = ["GET /pets/dog/1", "GET /pets/dog/{id}", "GET /pets/{proxy+}", "ANY /{proxy+}"];
    let routes = [&routes[..], &["$default"]].concat();
    let s = check(
        &routes,
        &[
            req("GET", "/pets/dog/1", Some("GET /pets/dog/1")),
            req("GET", "/pets/dog/2", Some("GET /pets/dog/{id}")),
            req("GET", "/pets/cat/1", Some("GET /pets/{proxy+}")),
            req("POST", "/test/5", Some("ANY /{proxy+}")),
        ],
    );
    for selection in &s {
        assert_eq!(selection.ambiguous, None);
        assert!(selection.assumptions.is_empty());
    }
    assert!(has_step(&s[0], Rule::LiteralOverVariable));
    assert_eq!(s[0].runners_up, [1, 2, 3, 4]);
    assert_eq!(s[1].path_parameters["id"], "2");
    assert_eq!(s[2].path_parameters["proxy"], "cat/1");
    assert!(has_step(&s[2], Rule::LongerGreedyPrefix));
    assert_eq!(s[3].path_parameters["proxy"], "test/5");
}

#[test]
fn row05_doc_default_takes_the_rest_and_preflights() {
    let s = check(
        &["GET /a", "$default"],
        &[req("OPTIONS", "/a", Some("$default")), req("GET", "/x/y/", Some("$default"))],
    );
    assert!(has_step(&s[0], Rule::DefaultCatchesRest));
    assert!(s[0].path_parameters.is_empty(), "$default sees the full path, binds nothing");

    // The fix the reference names: an unauthenticated `OPTIONS /{proxy+}` takes preflights.
    check(
        &["GET /a", "$default", "OPTIONS /{proxy+}"],
        &[req("OPTIONS", "/a", Some("OPTIONS /{proxy+}"))],
    );
}

#[test]
fn row06_obs_literal_beats_variable_from_the_left() {
    let s = check(
        &["GET /a/{id}", "GET /a/b"],
        &[req("GET", "/a/b", Some("GET /a/b")), req("GET", "/a/c", Some("GET /a/{id}"))],
    );
    assert!(has_step(&s[0], Rule::LiteralOverVariable));

    // Segment by segment from the left: the first difference decides, not the literal count.
    check(&["GET /{x}/b/c", "GET /a/{y}/{z}"], &[req("GET", "/a/b/c", Some("GET /a/{y}/{z}"))]);
}

#[test]
fn row07_obs_method_beats_any_on_the_same_path() {
    let s = check(&["ANY /a", "GET /a"], &[req("GET", "/a", Some("GET /a"))]);
    assert!(has_step(&s[0], Rule::MethodOverAny));
    assert_eq!(s[0].runners_up, [0]);

    check(
        &["ANY /{proxy+}", "GET /{p+}"],
        &[req("GET", "/x", Some("GET /{p+}")), req("PUT", "/x", Some("ANY /{proxy+}"))],
    );
}

#[test]
fn row08_obs_longer_greedy_prefix_wins() {
    let s = check(
        &["ANY /{proxy+}", "ANY /api/{proxy+}", "ANY /api/v1/{proxy+}"],
        &[
            req("GET", "/api/x", Some("ANY /api/{proxy+}")),
            req("GET", "/api/v1/x/y", Some("ANY /api/v1/{proxy+}")),
            req("GET", "/other", Some("ANY /{proxy+}")),
            req("GET", "/api", Some("ANY /{proxy+}")),
        ],
    );
    assert!(has_step(&s[0], Rule::LongerGreedyPrefix));
    assert_eq!(s[1].runners_up, [1, 0]);
    assert_eq!(s[1].path_parameters["proxy"], "x/y");
}

#[test]
fn row09_obs_method_mismatch_on_exact_path_falls_through() {
    let s = check(
        &["POST /zap", "OPTIONS /{proxy+}"],
        &[req("OPTIONS", "/zap", Some("OPTIONS /{proxy+}")), req("GET", "/zap", None)],
    );
    assert!(has_step(&s[0], Rule::MethodMismatchFallsThrough));
    assert!(has_step(&s[1], Rule::MethodMismatchFallsThrough));
    assert!(has_step(&s[1], Rule::NotFound));
}

#[test]
fn row10_q_greedy_needs_a_non_empty_remainder() {
    let s = check(
        &["ANY /mcp/{proxy+}"],
        &[req("POST", "/mcp/", None), req("POST", "/mcp/x", Some("ANY /mcp/{proxy+}"))],
    );
    assert_eq!(s[0].assumptions, [Rule::GreedyNeedsRemainder]);
    assert!(has_step(&s[0], Rule::GreedyNeedsRemainder));
    assert!(s[1].assumptions.is_empty());

    let s = check(&["ANY /mcp/{proxy+}", "$default"], &[req("POST", "/mcp/", Some("$default"))]);
    assert_eq!(s[0].assumptions, [Rule::GreedyNeedsRemainder]);

    let s = check(&["ANY /{proxy+}"], &[req("GET", "/", None)]);
    assert_eq!(s[0].assumptions, [Rule::GreedyNeedsRemainder]);

    // The usual remedy: `ANY /` beside `ANY /{proxy+}` makes the answer certain.
    let s = check(&["ANY /{proxy+}", "ANY /"], &[req("GET", "/", Some("ANY /"))]);
    assert!(s[0].assumptions.is_empty());

    // The same reading for a `{var}`: an empty segment binds nothing.
    let s = check(
        &["GET /a/{id}"],
        &[req("GET", "/a/", None), req("GET", "/a/1", Some("GET /a/{id}"))],
    );
    assert_eq!(s[0].assumptions, [Rule::GreedyNeedsRemainder]);

    // `/` is one empty segment to a `{var}` too (found by the property tests).
    let s = check(&["GET /{id}"], &[req("GET", "/", None)]);
    assert_eq!(s[0].assumptions, [Rule::GreedyNeedsRemainder]);
}

#[test]
fn row11_doc_greedy_matches_children() {
    let s = check(
        &["ANY /.well-known/{proxy+}"],
        &[
            req(
                "GET",
                "/.well-known/oauth-authorization-server",
                Some("ANY /.well-known/{proxy+}"),
            ),
            req("GET", "/.well-known/a/b", Some("ANY /.well-known/{proxy+}")),
        ],
    );
    assert_eq!(s[0].path_parameters["proxy"], "oauth-authorization-server");
    assert_eq!(s[1].path_parameters["proxy"], "a/b");
    assert!(s[0].assumptions.is_empty());
}

#[test]
fn row11_q_greedy_does_not_match_the_bare_prefix() {
    let s = check(
        &["ANY /.well-known/{proxy+}"],
        &[req("GET", "/.well-known", None), req("GET", "/.well-known/", None)],
    );
    assert_eq!(s[0].assumptions, [Rule::GreedyNotBare]);
    assert!(has_step(&s[0], Rule::GreedyNotBare));
    assert_eq!(s[1].assumptions, [Rule::GreedyNeedsRemainder], "`/.well-known/` is row 10's");
}

#[test]
fn row12_obs_trailing_slash_is_another_path() {
    let s = check(
        &["GET /health", "ANY /{proxy+}"],
        &[
            req("GET", "/health/", Some("ANY /{proxy+}")),
            req("GET", "/health", Some("GET /health")),
        ],
    );
    assert!(has_step(&s[0], Rule::TrailingSlashDistinct));
    assert!(s[0].assumptions.is_empty());
    assert_eq!(s[0].path_parameters["proxy"], "health/");
    check(&["GET /health", "$default"], &[req("GET", "/health/", Some("$default"))]);
}

#[test]
fn row13_q_paths_are_case_sensitive() {
    let s =
        check(&["GET /pets"], &[req("GET", "/PETS", None), req("GET", "/pets", Some("GET /pets"))]);
    assert_eq!(s[0].assumptions, [Rule::CaseSensitive]);
    assert!(has_step(&s[0], Rule::CaseSensitive));
    assert!(s[1].assumptions.is_empty());

    let s = check(&["GET /pets", "ANY /{proxy+}"], &[req("GET", "/Pets", Some("ANY /{proxy+}"))]);
    assert_eq!(s[0].assumptions, [Rule::CaseSensitive]);

    // A lowercase method is read as sent, so only `ANY` takes it.
    let s = check(&["GET /a", "ANY /a"], &[req("get", "/a", Some("ANY /a"))]);
    assert_eq!(s[0].assumptions, [Rule::CaseSensitive]);

    // Case does not matter when every reading has the same winner.
    let s = check(&["ANY /{proxy+}"], &[req("GET", "/Pets", Some("ANY /{proxy+}"))]);
    assert!(s[0].assumptions.is_empty());
}

#[test]
fn rows10_13_q_assumptions_that_only_matter_together() {
    let s = check(&["ANY /api/{proxy+}"], &[req("GET", "/API/", None)]);
    assert_eq!(s[0].assumptions, [Rule::GreedyNeedsRemainder, Rule::CaseSensitive]);
}

#[test]
fn row14_q_greedy_method_against_longer_any_prefix_is_ambiguous() {
    let s = check(
        &["GET /{proxy+}", "ANY /api/{proxy+}"],
        &[
            req("GET", "/api/x", Some("ANY /api/{proxy+}")),
            req("POST", "/api/x", Some("ANY /api/{proxy+}")),
            req("GET", "/other", Some("GET /{proxy+}")),
        ],
    );
    assert_eq!(s[0].ambiguous, Some((1, 0, Rule::GreedyMethodVsPrefix)));
    assert!(has_step(&s[0], Rule::GreedyMethodVsPrefix));
    assert_eq!(s[1].ambiguous, None);
    assert_eq!(s[2].ambiguous, None);
}

#[test]
fn row14_q_exact_method_against_more_literal_any_is_ambiguous() {
    let s = check(
        &["GET /a/{x}", "ANY /a/b"],
        &[req("GET", "/a/b", Some("ANY /a/b")), req("GET", "/a/c", Some("GET /a/{x}"))],
    );
    assert_eq!(s[0].ambiguous, Some((1, 0, Rule::ExactMethodVsPath)));
    assert_eq!(s[1].ambiguous, None);

    // Both pulls agree when the literal route is also method-specific.
    let s = check(&["GET /a/{x}", "ANY /a/b", "GET /a/b"], &[req("GET", "/a/b", Some("GET /a/b"))]);
    assert_eq!(s[0].ambiguous, None);
}

#[test]
fn row15_obs_parameters_come_from_the_decoded_path() {
    let s = check(
        &["GET /files/{name}/{rest+}"],
        &[req("GET", "/files/a b/c/d é", Some("GET /files/{name}/{rest+}"))],
    );
    assert_eq!(s[0].path_parameters["name"], "a b");
    assert_eq!(s[0].path_parameters["rest"], "c/d é");
}

#[test]
fn duplicates_lose_by_position_without_a_step() {
    let s = check(&["GET /a/{x}", "GET /a/{y}"], &[req("GET", "/a/1", Some("GET /a/{x}"))]);
    assert_eq!(s[0].runners_up, [1]);
    assert_eq!(s[0].path_parameters["x"], "1");
}

#[test]
fn every_rule_has_a_row_and_a_tag() {
    let rules = [
        Rule::StageFirst,
        Rule::Tiers,
        Rule::NotFound,
        Rule::AnyStandsForUndefined,
        Rule::DefaultCatchesRest,
        Rule::LiteralOverVariable,
        Rule::MethodOverAny,
        Rule::LongerGreedyPrefix,
        Rule::MethodMismatchFallsThrough,
        Rule::GreedyNeedsRemainder,
        Rule::GreedyNotBare,
        Rule::TrailingSlashDistinct,
        Rule::CaseSensitive,
        Rule::GreedyMethodVsPrefix,
        Rule::ExactMethodVsPath,
    ];
    for rule in rules {
        assert!((1..=14).contains(&rule.row()), "{rule:?}");
        assert!(["[doc]", "[obs]", "[?]"].contains(&rule.tag()), "{rule:?}");
        assert_eq!(rule.is_assumed(), matches!(rule.row(), 10 | 11 | 13 | 14), "{rule:?}");
    }
}

#[test]
fn section2_valid_keys_round_trip() {
    for key in [
        "$default",
        "GET /",
        "ANY /",
        "GET /pets",
        "ANY /{proxy+}",
        "ANY /.well-known/{proxy+}",
        "POST /a/{id}/b",
        "GET /a:b/x_y-z.json",
        "PATCH /{a}/{b}/{c+}",
        "HEAD /h",
        "OPTIONS /o",
        "PUT /p",
        "DELETE /d",
    ] {
        let parsed = RouteKey::parse(key).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(parsed.to_string(), key);
    }

    let parsed = RouteKey::parse("GET /a/{id}/{proxy+}").unwrap();
    let expected = RouteKey::Route {
        method: Method::Get,
        segments: vec![
            Segment::Literal("a".into()),
            Segment::Var("id".into()),
            Segment::Greedy("proxy".into()),
        ],
    };
    assert_eq!(parsed, expected);
    assert_eq!(
        RouteKey::parse("GET /").unwrap(),
        RouteKey::Route { method: Method::Get, segments: vec![] }
    );
}

#[test]
fn section2_invalid_keys_say_why() {
    use KeyErrorKind::*;
    for (key, kind) in [
        ("", Syntax),
        ("GET", Syntax),
        ("GET  /a", Syntax),
        (" /a", Syntax),
        ("GET /a b", Syntax),
        ("$default ", Syntax),
        ("get /a", LowercaseMethod),
        ("Any /a", LowercaseMethod),
        ("TRACE /a", UnknownMethod),
        ("ANY $default", PathNotAbsolute),
        ("GET a", PathNotAbsolute),
        ("GET /a/", TrailingSlash),
        ("GET /a//", TrailingSlash),
        ("GET /a//b", EmptySegment),
        ("GET /{id}.json", PartialSegmentVariable),
        ("GET /a{id}", PartialSegmentVariable),
        ("GET /{id", PartialSegmentVariable),
        ("GET /id}", PartialSegmentVariable),
        ("GET /{}", InvalidVariableName),
        ("GET /{+}", InvalidVariableName),
        ("GET /{a b}", Syntax),
        ("GET /{a.b}", InvalidVariableName),
        ("GET /{a}/{a}", DuplicateVariable),
        ("GET /{a}/{a+}", DuplicateVariable),
        ("GET /{proxy+}/a", GreedyNotLast),
        ("GET /{a+}/{b+}", MultipleGreedy),
        ("GET /a%20b", IllegalLiteralCharacter),
        ("GET /a~b", IllegalLiteralCharacter),
        ("GET /café", IllegalLiteralCharacter),
    ] {
        let err = RouteKey::parse(key).expect_err(key);
        assert_eq!(err.kind, kind, "{key}: {}", err.message);
        assert!(err.message.contains(&format!("`{key}`")), "{key}: {}", err.message);
        assert!(!err.help.is_empty() && !err.message.ends_with('.'), "{key}");
        assert!(err.kind.code().starts_with("route-key-"));
    }
}

#[test]
fn section2_duplicates_include_keys_differing_in_parameter_names() {
    let routes = keys(&[
        "GET /a/{x}",
        "GET /a/{y}",
        "POST /a/{x}",
        "GET /a/b",
        "$default",
        "$default",
        "ANY /{p+}",
        "ANY /{q+}",
        "GET /a/{x}",
    ]);
    assert_eq!(engine::duplicate_keys(&routes), [(0, 1), (0, 8), (1, 8), (4, 5), (6, 7)]);
    assert!(engine::same_route(&routes[0], &routes[1]));
    assert!(!engine::same_route(&routes[0], &routes[2]));
}

#[test]
fn section2_quotas() {
    assert_eq!(engine::MAX_ROUTES, 300);
    assert_eq!(engine::MAX_INTEGRATIONS, 300);
}

#[test]
fn row06_q_crossed_literals_are_ambiguous() {
    // Each route is the more literal one at a different depth: row 6 does not decide it.
    let routes = keys(&["GET /{x}/y", "GET /a/{z}"]);
    let s = engine::select(&routes, "GET", "/a/y");
    let (_, rival, rule) = s.ambiguous.expect("crossed routes are ambiguous");
    assert_eq!(rule, Rule::CrossedSegments);
    assert_eq!(rule.tag(), "[?]");
    assert_eq!(rule.row(), 6);
    assert!(s.winner.is_some() && Some(rival) != s.winner);
    // One literal against one variable at the same depth is row 6 itself, not ambiguous.
    let routes = keys(&["GET /a/{z}", "GET /{x}/{y}"]);
    assert!(engine::select(&routes, "GET", "/a/y").ambiguous.is_none());
}
