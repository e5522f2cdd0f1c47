//! Protobuf bodies read against the protos themselves: the field numbers and types of
//! `protobuf.messages` in an extract (`tests/contracts/livekit.json`, from livekit/protocol),
//! never the Rust structs the clients are built from, so an emulator and a client that agree
//! with each other cannot both be wrong about the wire unnoticed.
//!
//! A body becomes the protojson value Twirp would read from its JSON twin (proto names, enums
//! by name, `Duration`/`Timestamp` as strings), which the operation's JSON Schema then checks.
//! A field number the protos do not declare is refused (the Go server keeps it as an unknown
//! field and ignores it, so a client sending it writes nothing); a wire type that does not
//! fit the declared type is what the Go server answers `malformed`.
//!
//! The sandbox's JSON answers come from the same tables ([`Descriptors::answer`]): the
//! protobuf encoding of an answer, read here, then filled the way the Go server's
//! `protojson.MarshalOptions{UseProtoNames, EmitUnpopulated}` writes it. So a field's name,
//! JSON spelling and type in an answer are the protos', not a hand-written table's.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value};

/// The field numbers and types of every message an extract reaches, and its enums' names.
#[derive(Debug, Default)]
pub struct Descriptors {
    messages: BTreeMap<String, BTreeMap<u32, FieldDesc>>,
    enums: BTreeMap<String, BTreeMap<i64, String>>,
}

#[derive(Debug, Clone)]
struct FieldDesc {
    name: String,
    ty: Ty,
    repeated: bool,
    /// A oneof member or a proto3 `optional` field: left out of an answer when unset.
    sparse: bool,
}

/// What reading does with a field number the protos do not declare: a request carrying one
/// is refused; an answer leaves it out, as the Go server's protojson writes no unknown field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Undeclared {
    Refuse,
    Skip,
}

#[derive(Debug, Clone)]
enum Ty {
    /// `int32`, `string`, `bool`, …: the protobuf scalar name.
    Scalar(String),
    Enum(String),
    Message(String),
    Duration,
    Timestamp,
    Map(Box<Ty>, Box<Ty>),
    /// A message the extract does not describe: read as an empty object.
    Opaque,
}

impl Descriptors {
    /// Reads the `protobuf` section of an extract (absent: no message is described).
    pub fn parse(section: Option<&Value>) -> Result<Self, String> {
        let Some(section) = section else {
            return Ok(Self::default());
        };
        let mut messages = BTreeMap::new();
        for (name, fields) in section["messages"].as_object().ok_or("no messages")? {
            let mut table = BTreeMap::new();
            for (number, desc) in fields.as_object().ok_or("a message is not an object")? {
                let number: u32 = number.parse().map_err(|_| format!("{name}: {number}"))?;
                table.insert(
                    number,
                    FieldDesc {
                        name: desc["name"].as_str().unwrap_or_default().to_string(),
                        ty: Ty::parse(desc),
                        repeated: desc["repeated"].as_bool().unwrap_or(false),
                        sparse: desc.get("oneof").is_some()
                            || desc["optional"].as_bool().unwrap_or(false),
                    },
                );
            }
            messages.insert(name.clone(), table);
        }
        let mut enums = BTreeMap::new();
        for (name, values) in section["enums"].as_object().into_iter().flatten() {
            let values = values
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(n, v)| Some((n.parse().ok()?, v.as_str()?.to_string())))
                .collect();
            enums.insert(name.clone(), values);
        }
        Ok(Self { messages, enums })
    }

    /// The protojson value of a protobuf-encoded `message`, or why it cannot be read.
    pub fn decode(&self, message: &str, bytes: &[u8]) -> Result<Value, String> {
        self.read(message, bytes, Undeclared::Refuse)
    }

    fn read(&self, message: &str, bytes: &[u8], undeclared: Undeclared) -> Result<Value, String> {
        let fields = self
            .messages
            .get(message)
            .ok_or_else(|| format!("{message} is not in the extract"))?;
        let mut out = Map::new();
        let mut r = Reader(bytes);
        while !r.0.is_empty() {
            let key = r.varint()?;
            let (number, wire) = ((key >> 3) as u32, (key & 7) as u8);
            let raw = r.value(wire)?;
            let Some(field) = fields.get(&number) else {
                if undeclared == Undeclared::Skip {
                    continue;
                }
                return Err(format!(
                    "field number {number} is not declared in {message} (the protos)"
                ));
            };
            let values = self
                .values(&field.ty, field.repeated, raw, undeclared)
                .map_err(|e| format!("{message}.{}: {e}", field.name))?;
            put(&mut out, field, values);
        }
        Ok(Value::Object(out))
    }

    /// The protojson answer the Go server writes for the protobuf-encoded `message`
    /// (`UseProtoNames`, `EmitUnpopulated`): every field the protos declare, unset ones as
    /// their zero value (`""`, `0`, `"0"` for 64-bit integers, `false`, the enum's zero name,
    /// `[]`, `{}`, `null` for a message), except unset oneof members and proto3 `optional`
    /// fields, which are left out; so is a field number the protos do not declare
    /// (`livekit-protocol` 0.8.2's `ringing_timeout_status`).
    pub fn answer(&self, message: &str, bytes: &[u8]) -> Result<Value, String> {
        let mut value = self.read(message, bytes, Undeclared::Skip)?;
        self.fill(message, &mut value);
        Ok(value)
    }

    /// The proto names of the fields of `message` (none when the extract lacks it).
    pub fn field_names(&self, message: &str) -> Vec<String> {
        self.messages
            .get(message)
            .map(|fields| fields.values().map(|f| f.name.clone()).collect())
            .unwrap_or_default()
    }

    fn fill(&self, message: &str, value: &mut Value) {
        let (Some(fields), Some(object)) = (self.messages.get(message), value.as_object_mut())
        else {
            return;
        };
        for field in fields.values() {
            match object.get_mut(&field.name) {
                Some(present) => self.fill_present(field, present),
                None if field.sparse => {}
                None => {
                    object.insert(field.name.clone(), self.zero(field));
                }
            }
        }
    }

    fn fill_present(&self, field: &FieldDesc, present: &mut Value) {
        let Ty::Message(m) = &field.ty else {
            return;
        };
        match present {
            Value::Array(items) => items.iter_mut().for_each(|v| self.fill(m, v)),
            v => self.fill(m, v),
        }
    }

    fn zero(&self, field: &FieldDesc) -> Value {
        if field.repeated {
            return Value::Array(Vec::new());
        }
        match &field.ty {
            Ty::Map(..) => Value::Object(Map::new()),
            Ty::Message(_) | Ty::Duration | Ty::Timestamp | Ty::Opaque => Value::Null,
            Ty::Enum(_) => self.enum_value(&field.ty, 0),
            Ty::Scalar(s) => match s.as_str() {
                "string" | "bytes" => Value::from(""),
                "bool" => Value::from(false),
                "int64" | "uint64" | "sint64" | "fixed64" | "sfixed64" => Value::from("0"),
                _ => Value::from(0),
            },
        }
    }

    /// The value(s) one occurrence of a field holds (a packed repeated field holds several).
    fn values(
        &self,
        ty: &Ty,
        repeated: bool,
        raw: Raw<'_>,
        undeclared: Undeclared,
    ) -> Result<Vec<Value>, String> {
        match (raw, ty.wire()) {
            (Raw::Bytes(b), Some(w)) if repeated && w != 2 => {
                let mut r = Reader(b);
                let mut out = Vec::new();
                while !r.0.is_empty() {
                    out.push(self.scalar(ty, r.value(w)?)?);
                }
                Ok(out)
            }
            (raw, _) => Ok(vec![self.one(ty, raw, undeclared)?]),
        }
    }

    fn one(&self, ty: &Ty, raw: Raw<'_>, undeclared: Undeclared) -> Result<Value, String> {
        match (ty, raw) {
            (Ty::Message(m), Raw::Bytes(b)) => self.read(m, b, undeclared),
            (Ty::Duration, Raw::Bytes(b)) => duration(&self.pair(b)?),
            (Ty::Timestamp, Raw::Bytes(b)) => timestamp(&self.pair(b)?),
            (Ty::Map(k, v), Raw::Bytes(b)) => self.entry(k, v, b, undeclared),
            (Ty::Opaque, Raw::Bytes(_)) => Ok(Value::Object(Map::new())),
            (Ty::Scalar(_) | Ty::Enum(_), raw) => self.scalar(ty, raw),
            _ => Err("the wire type does not fit the declared type".into()),
        }
    }

    /// The `seconds` (1) and `nanos` (2) of a `Duration` or `Timestamp`.
    fn pair(&self, bytes: &[u8]) -> Result<(i64, i32), String> {
        let (mut seconds, mut nanos) = (0i64, 0i32);
        let mut r = Reader(bytes);
        while !r.0.is_empty() {
            let key = r.varint()?;
            match (key >> 3, r.value((key & 7) as u8)?) {
                (1, Raw::Varint(v)) => seconds = v as i64,
                (2, Raw::Varint(v)) => nanos = v as i32,
                _ => return Err("not a Duration/Timestamp".into()),
            }
        }
        Ok((seconds, nanos))
    }

    fn entry(
        &self,
        key: &Ty,
        value: &Ty,
        bytes: &[u8],
        undeclared: Undeclared,
    ) -> Result<Value, String> {
        let (mut k, mut v) = (Value::String(String::new()), Value::Null);
        let mut r = Reader(bytes);
        while !r.0.is_empty() {
            let tag = r.varint()?;
            let raw = r.value((tag & 7) as u8)?;
            match tag >> 3 {
                1 => k = self.one(key, raw, undeclared)?,
                2 => v = self.one(value, raw, undeclared)?,
                n => return Err(format!("a map entry has no field {n}")),
            }
        }
        let k = match k {
            Value::String(s) => s,
            other => other.to_string(),
        };
        Ok(Value::Object(Map::from_iter([(k, v)])))
    }

    fn scalar(&self, ty: &Ty, raw: Raw<'_>) -> Result<Value, String> {
        let name = match ty {
            Ty::Scalar(s) => s.as_str(),
            Ty::Enum(_) => "enum",
            _ => return Err("not a scalar".into()),
        };
        Ok(match (name, raw) {
            ("int32", Raw::Varint(v)) => Value::from(v as i32),
            ("uint32", Raw::Varint(v)) => Value::from(v as u32),
            ("sint32", Raw::Varint(v)) => Value::from(zigzag(v) as i32),
            ("int64", Raw::Varint(v)) => Value::from((v as i64).to_string()),
            ("uint64", Raw::Varint(v)) => Value::from(v.to_string()),
            ("sint64", Raw::Varint(v)) => Value::from(zigzag(v).to_string()),
            ("bool", Raw::Varint(v)) => Value::from(v != 0),
            ("enum", Raw::Varint(v)) => self.enum_value(ty, v as i32 as i64),
            ("fixed32", Raw::Fixed32(v)) => Value::from(v),
            ("sfixed32", Raw::Fixed32(v)) => Value::from(v as i32),
            ("float", Raw::Fixed32(v)) => number(f32::from_bits(v) as f64),
            ("fixed64", Raw::Fixed64(v)) => Value::from(v.to_string()),
            ("sfixed64", Raw::Fixed64(v)) => Value::from((v as i64).to_string()),
            ("double", Raw::Fixed64(v)) => number(f64::from_bits(v)),
            ("string", Raw::Bytes(b)) => Value::from(
                std::str::from_utf8(b).map_err(|_| "a string that is not UTF-8".to_string())?,
            ),
            ("bytes", Raw::Bytes(b)) => {
                Value::from(base64::engine::general_purpose::STANDARD.encode(b))
            }
            _ => return Err(format!("the wire type does not fit `{name}`")),
        })
    }

    /// An enum value by name; a number the protos do not name stays a number (proto3 enums
    /// are open).
    fn enum_value(&self, ty: &Ty, v: i64) -> Value {
        let Ty::Enum(e) = ty else {
            return Value::from(v);
        };
        match self.enums.get(e).and_then(|names| names.get(&v)) {
            Some(name) => Value::from(name.clone()),
            None => Value::from(v),
        }
    }
}

impl Ty {
    fn parse(desc: &Value) -> Self {
        match desc["type"].as_str().unwrap_or_default() {
            "message" => Ty::Message(desc["message"].as_str().unwrap_or_default().to_string()),
            "enum" => Ty::Enum(desc["enum"].as_str().unwrap_or_default().to_string()),
            "map" => Ty::Map(
                Box::new(Ty::parse(&desc["key"])),
                Box::new(Ty::parse(&desc["value"])),
            ),
            "google.protobuf.Duration" => Ty::Duration,
            "google.protobuf.Timestamp" => Ty::Timestamp,
            "unresolved" => Ty::Opaque,
            scalar => Ty::Scalar(scalar.to_string()),
        }
    }

    /// The wire type of a scalar, `None` for length-delimited kinds.
    fn wire(&self) -> Option<u8> {
        match self {
            Ty::Enum(_) => Some(0),
            Ty::Scalar(s) => match s.as_str() {
                "fixed64" | "sfixed64" | "double" => Some(1),
                "fixed32" | "sfixed32" | "float" => Some(5),
                "string" | "bytes" => None,
                _ => Some(0),
            },
            _ => None,
        }
    }
}

/// Adds one occurrence of a field to the message being read.
fn put(out: &mut Map<String, Value>, field: &FieldDesc, values: Vec<Value>) {
    let slot = out.entry(field.name.clone());
    match (&field.ty, field.repeated) {
        (Ty::Map(..), _) => {
            let map = slot.or_insert_with(|| Value::Object(Map::new()));
            for v in values {
                if let (Value::Object(m), Value::Object(entry)) = (&mut *map, v) {
                    m.extend(entry);
                }
            }
        }
        (_, true) => {
            if let Value::Array(list) = slot.or_insert_with(|| Value::Array(Vec::new())) {
                list.extend(values);
            }
        }
        // The last occurrence of a singular field wins (protobuf's merge, for scalars).
        (_, false) => {
            if let Some(v) = values.into_iter().last() {
                *slot.or_insert(Value::Null) = v;
            }
        }
    }
}

fn zigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn number(f: f64) -> Value {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or_else(|| Value::from(f.to_string()))
}

/// A `Duration` as protojson writes it: `"1.5s"`.
fn duration(&(seconds, nanos): &(i64, i32)) -> Result<Value, String> {
    if nanos == 0 {
        return Ok(Value::from(format!("{seconds}s")));
    }
    let frac = format!("{:09}", nanos.unsigned_abs());
    Ok(Value::from(format!(
        "{seconds}.{}s",
        frac.trim_end_matches('0')
    )))
}

/// A `Timestamp` as protojson writes it (RFC 3339, UTC).
fn timestamp(&(seconds, nanos): &(i64, i32)) -> Result<Value, String> {
    let t = chrono::DateTime::from_timestamp(seconds, nanos.max(0) as u32)
        .ok_or("a Timestamp out of range")?;
    Ok(Value::from(
        t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    ))
}

/// One field's payload as the wire carries it.
#[derive(Debug, Clone, Copy)]
enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first().ok_or("a truncated varint")?;
            self.0 = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a varint longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("a truncated field".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn value(&mut self, wire: u8) -> Result<Raw<'a>, String> {
        Ok(match wire {
            0 => Raw::Varint(self.varint()?),
            1 => Raw::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().map_err(|_| "fixed64")?,
            )),
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| "a length too large")?;
                Raw::Bytes(self.take(n)?)
            }
            5 => Raw::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().map_err(|_| "fixed32")?,
            )),
            w => return Err(format!("wire type {w} (groups are not proto3)")),
        })
    }
}
