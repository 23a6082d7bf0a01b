//! The API Gateway v2 event for one request, and the gateway's reading of a Lambda's answer.
//!
//! [`build`] writes the payload format 2.0 event that API Gateway hands a Lambda integration,
//! field by field as reference section 3 and the captured events describe it: `rawPath`
//! percent-decoded (row 15) with the stage kept when the client sent it, `rawQueryString` as
//! sent, header names lowercased with repeated headers joined by commas, the `cookie` header
//! moved to `cookies`, and the route key and path parameters of the route the engine chose.
//! [`read_response`] turns the Lambda's payload format 2.0 answer back into an HTTP response.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// One request as the client sent it to the gateway.
#[derive(Debug, Clone)]
pub struct Incoming<'a> {
    /// The method as sent, e.g. `POST`.
    pub method: &'a str,
    /// The path as sent, still percent-encoded, without the query string.
    pub path: &'a str,
    /// The query string as sent, without `?`; `""` for none.
    pub query: &'a str,
    /// `HTTP/1.1`.
    pub protocol: &'a str,
    /// Header names and values in the order sent.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    /// The client's address.
    pub source_ip: &'a str,
    /// The port the gateway listens on, for `x-forwarded-port`.
    pub port: u16,
}

/// What API Gateway knows about itself when it builds the event.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub account_id: &'a str,
    pub api_id: &'a str,
    /// The host the request came in on, without a port.
    pub domain_name: &'a str,
    /// The stage that serves the request: `$default` or its name.
    pub stage: &'a str,
    pub request_id: &'a str,
    /// Milliseconds since the Unix epoch when the request arrived.
    pub time_epoch_ms: u64,
}

/// The route the engine chose for the request.
#[derive(Debug, Clone)]
pub struct Routed<'a> {
    /// `$default` or `METHOD /path`, exactly as the route key is written.
    pub route_key: &'a str,
    /// The path the Lambda sees as `rawPath`, percent-decoded.
    pub raw_path: &'a str,
    pub path_parameters: &'a BTreeMap<String, String>,
}

/// The payload format 2.0 event API Gateway sends for `incoming` on `routed`.
pub fn build(incoming: &Incoming, routed: &Routed, context: &Context) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in incoming.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(
                value.split(';').map(str::trim).filter(|c| !c.is_empty()).map(String::from),
            );
            continue;
        }
        headers
            .entry(name)
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }

    // API Gateway adds the forwarding headers and a trace id; it appends the client to a
    // forwarded-for list the client sent.
    let forwarded_for = match headers.get("x-forwarded-for") {
        Some(list) => format!("{list}, {}", incoming.source_ip),
        None => incoming.source_ip.to_owned(),
    };
    headers.insert("x-forwarded-for".into(), forwarded_for);
    headers.insert("x-forwarded-port".into(), incoming.port.to_string());
    headers.insert("x-forwarded-proto".into(), "http".into());
    headers
        .entry("x-amzn-trace-id".into())
        .or_insert_with(|| trace_id(context.time_epoch_ms, context.request_id));
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();

    let mut event = Map::new();
    event.insert("version".into(), json!("2.0"));
    event.insert("routeKey".into(), json!(routed.route_key));
    event.insert("rawPath".into(), json!(routed.raw_path));
    event.insert("rawQueryString".into(), json!(incoming.query));
    if !cookies.is_empty() {
        event.insert("cookies".into(), json!(cookies));
    }
    event.insert("headers".into(), json!(headers));
    if !incoming.query.is_empty() {
        event.insert("queryStringParameters".into(), json!(query_parameters(incoming.query)));
    }
    if !routed.path_parameters.is_empty() {
        event.insert("pathParameters".into(), json!(routed.path_parameters));
    }
    event.insert(
        "requestContext".into(),
        json!({
            "accountId": context.account_id,
            "apiId": context.api_id,
            "domainName": context.domain_name,
            "domainPrefix": context.domain_name.split('.').next().unwrap_or_default(),
            "http": {
                "method": incoming.method,
                "path": routed.raw_path,
                "protocol": incoming.protocol,
                "sourceIp": incoming.source_ip,
                "userAgent": user_agent,
            },
            "requestId": context.request_id,
            "routeKey": routed.route_key,
            "stage": context.stage,
            "time": clf_time(context.time_epoch_ms / 1000),
            "timeEpoch": context.time_epoch_ms,
        }),
    );
    if !incoming.body.is_empty() {
        let content_type = headers.get("content-type").map(String::as_str).unwrap_or("");
        match std::str::from_utf8(incoming.body) {
            Ok(text) if is_text(content_type) => {
                event.insert("body".into(), json!(text));
                event.insert("isBase64Encoded".into(), json!(false));
            }
            _ => {
                event.insert("body".into(), json!(base64_encode(incoming.body)));
                event.insert("isBase64Encoded".into(), json!(true));
            }
        }
    } else {
        event.insert("isBase64Encoded".into(), json!(false));
    }
    Value::Object(event)
}

/// Whether API Gateway passes a body of this content type as text rather than base64. A body
/// without a content type is passed as text when it is UTF-8.
fn is_text(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    media.is_empty()
        || media.starts_with("text/")
        || media.ends_with("+json")
        || media.ends_with("+xml")
        || matches!(
            media.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-www-form-urlencoded"
        )
}

/// `queryStringParameters`: each name with its decoded value, repeated names joined by commas.
fn query_parameters(query: &str) -> BTreeMap<String, String> {
    let mut parameters: BTreeMap<String, String> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name);
        let value = percent_decode(value);
        parameters
            .entry(name)
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    parameters
}

/// Decodes `%XX` escapes; an escape that is not two hex digits stays as written, and bytes that
/// are not UTF-8 become U+FFFD.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) =
                (bytes.get(i + 1).and_then(|&b| hex(b)), bytes.get(i + 2).and_then(|&b| hex(b)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A time in the common log format API Gateway writes in `requestContext.time`, e.g.
/// `04/Dec/2025:16:20:00 +0000`.
pub fn clf_time(epoch_seconds: u64) -> String {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = epoch_seconds / 86_400;
    let seconds = epoch_seconds % 86_400;
    let (year, month, day) = civil_date(days);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01, counted in 400-year eras of 146 097
/// days, each starting on a March 1st so that the leap day falls at an era year's end.
fn civil_date(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

/// An X-Ray trace header in AWS's format: `Root=1-{epoch seconds, hex}-{24 hex digits}`.
pub fn trace_id(time_epoch_ms: u64, request_id: &str) -> String {
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in request_id.bytes() {
        digest = (digest ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("Root=1-{:08x}-{:024x}", time_epoch_ms / 1000, u128::from(digest))
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as API Gateway encodes binary bodies.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64, padding optional; `None` on any other character.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut bits = 0u32;
    let mut count = 0;
    for c in text.bytes() {
        let value = BASE64.iter().position(|&b| b == c)? as u32;
        bits = bits << 6 | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Some(out)
}

/// An HTTP response as API Gateway sends it to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// API Gateway's own JSON answer, such as `404 {"message":"Not Found"}`.
    pub fn gateway(status: u16, message: &str) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json!({ "message": message }).to_string().into_bytes(),
        }
    }
}

/// How API Gateway reads a Lambda's payload format 2.0 answer: an object with `statusCode` is a
/// response (`headers`, `multiValueHeaders`, `cookies` as `Set-Cookie`, `body`,
/// `isBase64Encoded`); any other JSON is a `200` whose body is that JSON. An answer that is not
/// JSON, or a malformed response, is the gateway's `500`.
pub fn read_response(payload: &[u8]) -> Answer {
    let Ok(value) = serde_json::from_slice::<Value>(payload) else {
        return Answer::gateway(500, "Internal Server Error");
    };
    let Some(object) = value.as_object().filter(|o| o.contains_key("statusCode")) else {
        return Answer {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: payload.to_vec(),
        };
    };
    match structured(object) {
        Some(answer) => answer,
        None => Answer::gateway(500, "Internal Server Error"),
    }
}

fn structured(object: &Map<String, Value>) -> Option<Answer> {
    let status = object.get("statusCode")?.as_u64().filter(|s| (100..=599).contains(s))? as u16;
    let mut headers = Vec::new();
    if let Some(map) = object.get("headers").filter(|v| !v.is_null()) {
        for (name, value) in map.as_object()? {
            headers.push((name.clone(), scalar(value)?));
        }
    }
    if let Some(map) = object.get("multiValueHeaders").filter(|v| !v.is_null()) {
        for (name, values) in map.as_object()? {
            for value in values.as_array()? {
                headers.push((name.clone(), scalar(value)?));
            }
        }
    }
    if let Some(cookies) = object.get("cookies").filter(|v| !v.is_null()) {
        for cookie in cookies.as_array()? {
            headers.push(("set-cookie".into(), cookie.as_str()?.to_owned()));
        }
    }
    let encoded = object.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false);
    let body = match object.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if encoded => base64_decode(text)?,
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    Some(Answer { status, headers, body })
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/generated/wikibot/wikibot-mcp-router/tests/fixtures");

    /// Every key path of a JSON value with the JSON type at its end, e.g.
    /// `requestContext.http.method: string`.
    fn shape(value: &Value, prefix: &str, out: &mut BTreeMap<String, &'static str>) {
        let kind = match value {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(map) => {
                for (key, child) in map {
                    let path =
                        if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                    // Header names vary from request to request; their values are strings.
                    if prefix == "headers" {
                        out.insert("headers.*".into(), "string");
                        continue;
                    }
                    shape(child, &path, out);
                }
                "object"
            }
        };
        out.insert(if prefix.is_empty() { ".".into() } else { prefix.into() }, kind);
    }

    fn fixture(name: &str) -> Value {
        let path = format!("{FIXTURES}/events/{name}.json");
        let mut value: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        value.as_object_mut().unwrap().remove("x-specgen");
        value
    }

    /// The fixture's request rebuilt from its own fields, then turned into an event by [`build`].
    fn rebuilt(fixture: &Value) -> Value {
        let context = &fixture["requestContext"];
        let headers: Vec<(String, String)> = fixture["headers"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(name, _)| !name.starts_with("x-forwarded") && *name != "x-amzn-trace-id")
            .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
            .collect();
        let body = fixture["body"].as_str().unwrap_or("").as_bytes().to_vec();
        let parameters: BTreeMap<String, String> =
            serde_json::from_value(fixture.get("pathParameters").cloned().unwrap_or(json!({})))
                .unwrap();
        let incoming = Incoming {
            method: context["http"]["method"].as_str().unwrap(),
            path: fixture["rawPath"].as_str().unwrap(),
            query: fixture["rawQueryString"].as_str().unwrap(),
            protocol: "HTTP/1.1",
            headers: &headers,
            body: &body,
            source_ip: context["http"]["sourceIp"].as_str().unwrap(),
            port: 443,
        };
        let routed = Routed {
            route_key: fixture["routeKey"].as_str().unwrap(),
            raw_path: fixture["rawPath"].as_str().unwrap(),
            path_parameters: &parameters,
        };
        let context = Context {
            account_id: context["accountId"].as_str().unwrap(),
            api_id: context["apiId"].as_str().unwrap(),
            domain_name: context["domainName"].as_str().unwrap(),
            stage: context["stage"].as_str().unwrap(),
            request_id: context["requestId"].as_str().unwrap(),
            time_epoch_ms: context["timeEpoch"].as_u64().unwrap(),
        };
        build(&incoming, &routed, &context)
    }

    #[test]
    fn events_have_the_shape_of_the_generated_crates_fixtures() {
        // The fixtures are what the generated crate deserializes into lambda_http's
        // `ApiGatewayV2httpRequest`; an event with their key paths and types reads the same.
        for name in ["default-stage", "named-stage", "custom-domain"] {
            let fixture = fixture(name);
            let event = rebuilt(&fixture);
            let (mut want, mut got) = (BTreeMap::new(), BTreeMap::new());
            shape(&fixture, "", &mut want);
            shape(&event, "", &mut got);
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn events_carry_the_fixtures_values() {
        let fixture = fixture("default-stage");
        let event = rebuilt(&fixture);
        for field in ["version", "routeKey", "rawPath", "rawQueryString", "body", "isBase64Encoded"]
        {
            assert_eq!(event[field], fixture[field], "{field}");
        }
        assert_eq!(event["requestContext"], fixture["requestContext"]);
        assert_eq!(event["headers"]["content-type"], fixture["headers"]["content-type"]);
    }

    #[test]
    fn cookies_query_and_binary_bodies_are_read_as_api_gateway_reads_them() {
        let headers = vec![
            ("Cookie".to_owned(), "a=1; b=2".to_owned()),
            ("X-Many".to_owned(), "one".to_owned()),
            ("x-many".to_owned(), "two".to_owned()),
            ("Content-Type".to_owned(), "application/octet-stream".to_owned()),
        ];
        let incoming = Incoming {
            method: "PUT",
            path: "/files/a%20b",
            query: "x=1&x=2&y=%2F",
            protocol: "HTTP/1.1",
            headers: &headers,
            body: &[0, 159, 1],
            source_ip: "127.0.0.1",
            port: 8787,
        };
        let parameters = BTreeMap::from([("name".to_owned(), "a b".to_owned())]);
        let routed = Routed {
            route_key: "PUT /files/{name}",
            raw_path: "/files/a b",
            path_parameters: &parameters,
        };
        let context = Context {
            account_id: "000000000000",
            api_id: "local",
            domain_name: "127.0.0.1",
            stage: "$default",
            request_id: "r1",
            time_epoch_ms: 1_764_865_200_000,
        };
        let event = build(&incoming, &routed, &context);
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["headers"]["x-many"], "one,two");
        assert_eq!(event["queryStringParameters"], json!({"x": "1,2", "y": "/"}));
        assert_eq!(event["rawQueryString"], "x=1&x=2&y=%2F");
        assert_eq!(event["pathParameters"], json!({"name": "a b"}));
        assert_eq!(event["body"], "AJ8B");
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["requestContext"]["time"], "04/Dec/2025:16:20:00 +0000");
    }

    #[test]
    fn dates_and_base64_round_trip() {
        assert_eq!(clf_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(clf_time(951_782_400), "29/Feb/2000:00:00:00 +0000");
        assert_eq!(percent_decode("/a%2Fb%zz%41"), "/a/b%zzA");
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", &[255, 0, 128]] {
            assert_eq!(base64_decode(&base64_encode(bytes)).unwrap(), bytes);
        }
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");
    }

    #[test]
    fn lambda_answers_are_read_as_api_gateway_reads_them() {
        let answer = read_response(
            br#"{"statusCode":401,"headers":{"www-authenticate":"Bearer x"},
                "multiValueHeaders":{"vary":["a","b"]},"cookies":["s=1"],
                "body":"aGk=","isBase64Encoded":true}"#,
        );
        assert_eq!(answer.status, 401);
        assert_eq!(answer.body, b"hi");
        assert!(answer.headers.contains(&("www-authenticate".into(), "Bearer x".into())));
        assert!(answer.headers.contains(&("vary".into(), "b".into())));
        assert!(answer.headers.contains(&("set-cookie".into(), "s=1".into())));

        let bare = read_response(br#"{"ok":true}"#);
        assert_eq!((bare.status, bare.body.as_slice()), (200, &br#"{"ok":true}"#[..]));
        assert_eq!(read_response(b"not json").status, 500);
        assert_eq!(read_response(br#"{"statusCode":"x"}"#).status, 500);
    }
}
