//! Strict mode: every request the sandbox receives and every answer it sends, held to schema
//! extracts of the providers' published specs.
//!
//! The extracts live in `tests/contracts/{provider}.json` (see the README there for where each
//! came from: repository, commit, file) and are compiled into cwa, so the embedded sandbox
//! (`CWA_SANDBOX_STRICT=1`), `cwa sandbox serve` and the test suite check against the same
//! text. Validation is the `jsonschema` crate's (JSON Schema 2020-12), never a hand-written
//! validator.
//!
//! One extract file holds, per operation: `method`, `path` (with `{param}` segments, a
//! segment may end in a literal suffix such as `{Sid}.json`), `query` (a schema of the decoded
//! query pairs, deepObject parameters flattened to `filter[phone_number][ends_with]`), `body`
//! (`json` or `form`) with `request` (the body's schema), and `responses` (status -> schema);
//! `error` is the provider's error envelope every 4xx/5xx answer must match, and `$defs` the
//! shared component schemas operations point at with `#/$defs/...`.
//!
//! Query pairs and form bodies arrive as strings; they are read into JSON with the type their
//! schema declares (`integer`, `number`, `boolean`, `array`), so a non-numeric `Weight` stays a
//! string and fails its `integer` type.
//!
//! A provider with no extract registered in [`for_provider`] is not checked. LiveKit's extract
//! (`livekit.json`, from the SIP protos) describes each Twirp method as `POST
//! /twirp/livekit.SIP/{Method}` with the protojson form of its request and answer; an
//! operation's `protobuf` names its request and response messages, and the extract's
//! `protobuf` section their field numbers and types, so a protobuf body ([`RequestBody::Protobuf`])
//! is read against the protos ([`protobuf`]), not the Rust structs, and then checked as JSON.

mod protobuf;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, Validator};
use serde_json::{Map, Value};

/// The extract files, compiled in.
const TELNYX: &str = include_str!("../../tests/contracts/telnyx.json");
const TWILIO: &str = include_str!("../../tests/contracts/twilio.json");
const LIVEKIT: &str = include_str!("../../tests/contracts/livekit.json");

static TELNYX_SET: LazyLock<Result<ContractSet, String>> =
    LazyLock::new(|| ContractSet::parse(TELNYX));
static TWILIO_SET: LazyLock<Result<ContractSet, String>> =
    LazyLock::new(|| ContractSet::parse(TWILIO));
static LIVEKIT_SET: LazyLock<Result<ContractSet, String>> =
    LazyLock::new(|| ContractSet::parse(LIVEKIT));

/// The contracts of a provider (`telnyx`, `twilio`, `livekit`), when its extract is registered. A damaged
/// extract is a bug of the repository: it panics with the reason, in tests and at first use.
pub fn for_provider(provider: &str) -> Option<&'static ContractSet> {
    let set = match provider {
        "telnyx" => &*TELNYX_SET,
        "twilio" => &*TWILIO_SET,
        "livekit" => &*LIVEKIT_SET,
        _ => return None,
    };
    match set {
        Ok(set) => Some(set),
        Err(e) => panic!("tests/contracts/{provider}.json is not a usable extract: {e}"),
    }
}

/// What a request carried in its body, as the contract reads it.
#[derive(Debug, Clone)]
pub enum RequestBody {
    None,
    Json(Value),
    Form(Vec<(String, String)>),
    /// A protobuf body (Twirp `application/protobuf`), read against the extract's protos.
    Protobuf(Vec<u8>),
    /// A body that could not be read at all (not JSON where JSON was due, …).
    Unreadable(String),
}

/// Why a request or answer does not match its contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `route`, `query`, `body`, `encoding` (a body that is not JSON / a form) or `response`.
    pub part: &'static str,
    /// JSON pointer into that part (`/outbound/channel_limit`), empty for the whole.
    pub pointer: String,
    pub message: String,
    /// The operation's id in the spec (`UpdateFqdnConnection`), when one matched.
    pub operation: Option<String>,
    /// Whether what is wrong is a required key that is missing (providers answer that with
    /// their own code: Telnyx 10004).
    pub missing: bool,
}

impl Violation {
    fn undeclared(method: &str, path: &str) -> Self {
        Self {
            part: "route",
            pointer: String::new(),
            message: format!(
                "{method} {path} is in no contract of tests/contracts: extract its schema from the provider's spec first"
            ),
            operation: None,
            missing: false,
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = self.operation.as_deref().unwrap_or("no operation");
        if self.pointer.is_empty() {
            write!(f, "{op}: {}: {}", self.part, self.message)
        } else {
            write!(f, "{op}: {} {}: {}", self.part, self.pointer, self.message)
        }
    }
}

/// Which repository, commit and file an extract came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub repository: String,
    pub commit: String,
    pub file: String,
}

/// One provider's operations, compiled.
pub struct ContractSet {
    provider: String,
    sources: Vec<Source>,
    operations: Vec<Operation>,
    error: Validator,
    protobuf: protobuf::Descriptors,
}

impl std::fmt::Debug for ContractSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContractSet")
            .field("provider", &self.provider)
            .field("operations", &self.operations.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}` followed by a literal suffix (`{Sid}.json` has suffix `.json`).
    Param(String),
}

struct Operation {
    id: String,
    method: String,
    segments: Vec<Segment>,
    query_schema: Value,
    query: Validator,
    request: Option<(BodyKind, Value, Validator)>,
    responses: BTreeMap<u16, Validator>,
    /// The protobuf messages of the request and of a success answer (Twirp operations).
    messages: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
}

impl ContractSet {
    /// Reads and compiles one extract file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let defs = doc
            .get("$defs")
            .cloned()
            .unwrap_or(Value::Object(Map::new()));
        let compile = |schema: &Value| compile(schema, &defs);
        let sources = doc["sources"]
            .as_array()
            .ok_or("no sources")?
            .iter()
            .map(|s| Source {
                repository: s["repository"].as_str().unwrap_or_default().to_string(),
                commit: s["commit"].as_str().unwrap_or_default().to_string(),
                file: s["file"].as_str().unwrap_or_default().to_string(),
            })
            .collect();
        let mut operations = Vec::new();
        for op in doc["operations"].as_array().ok_or("no operations")? {
            operations.push(Operation::parse(op, &compile)?);
        }
        Ok(Self {
            provider: doc["provider"].as_str().unwrap_or_default().to_string(),
            sources,
            operations,
            error: compile(&doc["error"])?,
            protobuf: protobuf::Descriptors::parse(doc.get("protobuf"))?,
        })
    }

    /// The protojson answer of the Twirp method `method` (`CreateSIPInboundTrunk`) for its
    /// protobuf-encoded success message, as the Go server writes it
    /// ([`protobuf::Descriptors::answer`]): names, spellings and types from the protos.
    pub fn twirp_answer(&self, method: &str, bytes: &[u8]) -> Result<Value, String> {
        let message = self
            .operations
            .iter()
            .find(|op| op.id == method)
            .and_then(|op| op.messages.as_ref())
            .map(|(_, response)| response.as_str())
            .ok_or_else(|| format!("{method} is not a Twirp operation of the extract"))?;
        self.protobuf.answer(message, bytes)
    }

    /// The proto names of the fields of `message` (`livekit.SIPInboundTrunkInfo`).
    pub fn message_fields(&self, message: &str) -> Vec<String> {
        self.protobuf.field_names(message)
    }

    /// The repositories, commits and files the extract came from.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// How many operations (method and path) the extract covers.
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// `METHOD path` of every operation, in the extract's order.
    pub fn operations(&self) -> Vec<String> {
        self.operations
            .iter()
            .map(|o| format!("{} {}", o.method, o.path()))
            .collect()
    }

    /// Whether some operation declares this method and path.
    pub fn covers(&self, method: &str, path: &str) -> bool {
        self.find(method, path).is_some()
    }

    fn find(&self, method: &str, path: &str) -> Option<&Operation> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.operations
            .iter()
            .filter(|o| o.method == method && o.matches(&segments))
            .max_by_key(|o| o.literal_count())
    }

    /// Checks a request: the route must be declared, its query and body must match.
    pub fn check_request(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: &RequestBody,
    ) -> Result<(), Violation> {
        let op = self
            .find(method, path)
            .ok_or_else(|| Violation::undeclared(method, path))?;
        let query_json = from_pairs(query, &op.query_schema);
        op.first_error("query", &op.query, &query_json)?;
        let decoded;
        let body = match body {
            RequestBody::Protobuf(bytes) => {
                decoded = self.decode(op, true, bytes)?;
                &decoded
            }
            other => other,
        };
        match (&op.request, body) {
            (_, RequestBody::Unreadable(e)) => Err(op.violation("encoding", "", e.clone())),
            (None, RequestBody::None) => Ok(()),
            (None, RequestBody::Json(Value::Object(m))) if m.is_empty() => Ok(()),
            (None, RequestBody::Form(pairs)) if pairs.is_empty() => Ok(()),
            (None, _) => Err(op.violation("body", "", "this operation takes no body".into())),
            (Some((_, _, validator)), RequestBody::None) => {
                op.first_error("body", validator, &Value::Object(Map::new()))
            }
            (Some((BodyKind::Json, _, validator)), RequestBody::Json(v)) => {
                op.first_error("body", validator, v)
            }
            (Some((BodyKind::Form, schema, validator)), RequestBody::Form(pairs)) => {
                // An empty value clears a field (Twilio's convention, e.g. `TrunkSid=`), which
                // the specs' patterns cannot express: a declared field sent empty is not checked.
                let set: Vec<(String, String)> = pairs
                    .iter()
                    .filter(|(k, v)| !(v.is_empty() && schema["properties"].get(k).is_some()))
                    .cloned()
                    .collect();
                op.first_error("body", validator, &from_pairs(&set, schema))
            }
            (Some((kind, _, _)), _) => {
                Err(op.violation("body", "", format!("the body must be {}", kind.describe())))
            }
        }
    }

    /// A protobuf body of `op`'s request (or success answer) as the JSON its schema checks.
    fn decode(
        &self,
        op: &Operation,
        request: bool,
        bytes: &[u8],
    ) -> Result<RequestBody, Violation> {
        let part = if request { "encoding" } else { "response" };
        let (req, resp) = op.messages.as_ref().ok_or_else(|| {
            op.violation(part, "", "this operation takes no protobuf body".into())
        })?;
        let message = if request { req } else { resp };
        self.protobuf
            .decode(message, bytes)
            .map(RequestBody::Json)
            .map_err(|e| op.violation(part, "", e))
    }

    /// Checks an answer to a request of this method and path: a success status must be one
    /// the operation declares and its body must match; an error must be the provider's error
    /// envelope. An answer to an undeclared route is not checked (the request was refused).
    /// `protobuf`: the answer is a protobuf message (Twirp), read against the protos.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &[u8],
        protobuf: bool,
    ) -> Result<(), Violation> {
        let Some(op) = self.find(method, path) else {
            return Ok(());
        };
        let parsed = || -> Result<Value, Violation> {
            if protobuf && status < 400 {
                return match self.decode(op, false, body)? {
                    RequestBody::Json(v) => Ok(v),
                    _ => Ok(Value::Null),
                };
            }
            if body.is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_slice(body)
                .map_err(|e| op.violation("response", "", format!("the body is not JSON: {e}")))
        };
        if status >= 400 {
            return op.first_error("response", &self.error, &parsed()?);
        }
        let Some(validator) = op.responses.get(&status) else {
            let declared: Vec<String> = op.responses.keys().map(u16::to_string).collect();
            return Err(op.violation(
                "response",
                "",
                format!(
                    "status {status} is not declared (declared: {})",
                    declared.join(", ")
                ),
            ));
        };
        let value = parsed()?;
        if value.is_null() && body.is_empty() && !protobuf {
            return Ok(());
        }
        op.first_error("response", validator, &value)
    }
}

impl BodyKind {
    fn describe(self) -> &'static str {
        match self {
            Self::Json => "a JSON object",
            Self::Form => "application/x-www-form-urlencoded",
        }
    }
}

impl Operation {
    fn parse(
        op: &Value,
        compile: &impl Fn(&Value) -> Result<Validator, String>,
    ) -> Result<Self, String> {
        let id = op["id"]
            .as_str()
            .ok_or("an operation without id")?
            .to_string();
        let at = |e: String| format!("{id}: {e}");
        let segments = op["path"]
            .as_str()
            .ok_or_else(|| at("no path".into()))?
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('{').and_then(|r| r.split_once('}')) {
                    Some((_, suffix)) => Segment::Param(suffix.to_string()),
                    None => Segment::Literal(s.to_string()),
                },
            )
            .collect();
        let query_schema = op
            .get("query")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({"type": "object"}));
        let request = match op.get("request") {
            Some(schema) => {
                let kind = match op["body"].as_str() {
                    Some("form") => BodyKind::Form,
                    _ => BodyKind::Json,
                };
                Some((kind, schema.clone(), compile(schema).map_err(at)?))
            }
            None => None,
        };
        let messages = op.get("protobuf").map(|m| {
            let name = |k: &str| m[k].as_str().unwrap_or_default().to_string();
            (name("request"), name("response"))
        });
        let mut responses = BTreeMap::new();
        for (code, schema) in op["responses"].as_object().into_iter().flatten() {
            let status: u16 = code.parse().map_err(|_| at(format!("status {code}")))?;
            responses.insert(status, compile(schema).map_err(at)?);
        }
        Ok(Self {
            query: compile(&query_schema).map_err(at)?,
            method: op["method"].as_str().unwrap_or_default().to_string(),
            id,
            segments,
            query_schema,
            request,
            responses,
            messages,
        })
    }

    fn path(&self) -> String {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => format!("/{l}"),
                Segment::Param(suffix) => format!("/{{}}{suffix}"),
            })
            .collect()
    }

    fn matches(&self, segments: &[&str]) -> bool {
        self.segments.len() == segments.len()
            && self.segments.iter().zip(segments).all(|(s, got)| match s {
                Segment::Literal(l) => l == got,
                Segment::Param(suffix) => got
                    .strip_suffix(suffix.as_str())
                    .is_some_and(|v| !v.is_empty()),
            })
    }

    fn literal_count(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }

    fn violation(&self, part: &'static str, pointer: &str, message: String) -> Violation {
        Violation {
            part,
            pointer: pointer.to_string(),
            message,
            operation: Some(self.id.clone()),
            missing: false,
        }
    }

    fn first_error(
        &self,
        part: &'static str,
        validator: &Validator,
        value: &Value,
    ) -> Result<(), Violation> {
        // A missing required key is reported first, as providers do.
        let mut errors: Vec<_> = validator.iter_errors(value).collect();
        errors.sort_by_key(|e| !matches!(e.kind(), ValidationErrorKind::Required { .. }));
        match errors.into_iter().next() {
            None => Ok(()),
            Some(e) => {
                let mut v = self.violation(part, &e.instance_path().to_string(), e.to_string());
                if let ValidationErrorKind::Required { property } = e.kind() {
                    v.missing = true;
                    if let Some(name) = property.as_str() {
                        v.pointer = format!("{}/{name}", v.pointer);
                    }
                }
                Err(v)
            }
        }
    }
}

/// A schema of the extract, with the extract's `$defs` beside it so `#/$defs/...` resolves.
fn compile(schema: &Value, defs: &Value) -> Result<Validator, String> {
    let mut root = match schema {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    root.insert("$defs".into(), defs.clone());
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .build(&Value::Object(root))
        .map_err(|e| e.to_string())
}

/// Query pairs or form fields as a JSON object, each value typed as its schema declares.
fn from_pairs(pairs: &[(String, String)], schema: &Value) -> Value {
    let mut out = Map::new();
    for (key, raw) in pairs {
        let declared = &schema["properties"][key.as_str()];
        match declared_type(declared) {
            Some("array") => {
                // A repeated key or a comma list (`filter[features]=voice,sms`).
                let item_type = declared_type(&declared["items"]);
                let items = raw.split(',').map(|v| typed(v.trim(), item_type));
                match out
                    .entry(key.clone())
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    Value::Array(list) => list.extend(items),
                    other => *other = Value::Array(items.collect()),
                }
            }
            t => {
                out.insert(key.clone(), typed(raw, t));
            }
        }
    }
    Value::Object(out)
}

/// The first non-null `type` a schema declares.
fn declared_type(schema: &Value) -> Option<&str> {
    match &schema["type"] {
        Value::String(t) => Some(t.as_str()),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

fn typed(raw: &str, t: Option<&str>) -> Value {
    let parsed = match t {
        Some("integer") => raw.parse::<i64>().ok().map(Value::from),
        Some("number") => raw.parse::<f64>().ok().map(Value::from),
        Some("boolean") => match raw.to_ascii_lowercase().as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => None,
    };
    parsed.unwrap_or_else(|| Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn telnyx() -> &'static ContractSet {
        for_provider("telnyx").unwrap()
    }

    #[test]
    fn every_extract_compiles_and_names_its_commit() {
        for provider in ["telnyx", "twilio", "livekit"] {
            let set = for_provider(provider).unwrap();
            assert!(!set.is_empty(), "{provider}");
            assert!(set
                .sources()
                .iter()
                .all(|s| s.commit.len() == 40 && s.repository.starts_with("github:")));
        }
    }

    #[test]
    fn undeclared_keys_and_wrong_types_are_refused() {
        let patch = |body: Value| {
            telnyx().check_request(
                "PATCH",
                "/v2/fqdn_connections/123",
                &[],
                &RequestBody::Json(body),
            )
        };
        assert!(patch(json!({"connection_name": "LiveKit"})).is_ok());
        let e = patch(json!({"user_name": "x"})).unwrap_err();
        assert_eq!(e.operation.as_deref(), Some("UpdateFqdnConnection"));
        let e = patch(json!({"outbound": {"channel_limit": null}})).unwrap_err();
        assert_eq!(e.pointer, "/outbound/channel_limit");
    }

    #[test]
    fn query_values_are_typed_by_their_schema() {
        let q = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            telnyx().check_request("GET", "/v2/phone_numbers", &pairs, &RequestBody::None)
        };
        assert!(q(&[("page[size]", "250"), ("filter[phone_number]", "1414")]).is_ok());
        assert!(q(&[("page[size]", "251")]).is_err());
        assert!(q(&[("page[size]", "many")]).is_err());
        assert!(q(&[("filter[nope]", "x")]).is_err());
    }

    #[test]
    fn routes_match_params_and_suffixes() {
        let twilio = for_provider("twilio").unwrap();
        assert!(twilio.covers(
            "GET",
            "/2010-04-01/Accounts/AC1/IncomingPhoneNumbers/PN1.json"
        ));
        assert!(twilio.covers("GET", "/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json"));
        assert!(!twilio.covers("GET", "/2010-04-01/Accounts/AC1/IncomingPhoneNumbers/PN1"));
        assert!(telnyx().covers("GET", "/v2/fqdns/1"));
        assert!(!telnyx().covers("PUT", "/v2/fqdns/1"));
    }
}
