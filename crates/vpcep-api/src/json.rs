//! Strict JSON for request bodies: exactly one JSON value, valid UTF-8 throughout, no key twice
//! in one object, and an object wherever the API expects an object (serde's derived structs
//! would also take an array, filling fields in order: `{"vpc": ["10.0.0.0/16", "x"]}` or a body
//! `[false]`). The body is parsed into a [`Value`] first (which checks the first three rules),
//! then the wire type is read from that value through `Strict`, which refuses anything but an
//! object for a struct or a map.

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

/// Why a body is not acceptable JSON.
#[derive(Debug)]
pub enum JsonError {
    /// Not one well-formed JSON value of valid UTF-8 (the message says where).
    Malformed(String),
    /// Well-formed, but a value does not fit the expected type; `path` is like `ports[0].protocol`
    /// (`.` for the whole body).
    Invalid {
        /// Where in the body.
        path: String,
        /// What is wrong.
        msg: String,
    },
}

/// Parses `bytes` as exactly one JSON value (see the module docs).
pub fn parse_value(bytes: &[u8]) -> Result<Value, JsonError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        JsonError::Malformed(format!(
            "the body is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ))
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize::<_, Unique>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || inner.is_syntax() || inner.is_eof() {
            JsonError::Malformed(inner.to_string())
        } else {
            JsonError::Malformed(format!("{inner} in {path}"))
        }
    })?;
    de.end().map_err(|e| {
        JsonError::Malformed(format!("{e}: the body must be exactly one JSON value"))
    })?;
    Ok(value.0)
}

/// Reads a `T` from a parsed body, objects only where `T` has structs or maps.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, JsonError> {
    serde_path_to_error::deserialize(Strict(value)).map_err(|e| JsonError::Invalid {
        path: e.path().to_string(),
        msg: e.into_inner().to_string(),
    })
}

/// A [`Value`] built while refusing a key that appears twice in one object.
struct Unique(Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number is not finite"))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Unique(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("the key {key:?} appears twice")));
            }
            let Unique(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// The JSON type of a value, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Deserializes from a [`Value`] like `serde_json::Value` does, except that structs and maps
/// accept only objects.
#[derive(Clone, Copy)]
struct Strict<'de>(&'de Value);

impl<'de> IntoDeserializer<'de, serde_json::Error> for Strict<'de> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Strict<'de> {
    fn object<V: Visitor<'de>>(
        map: &'de Map<String, Value>,
        v: V,
    ) -> Result<V::Value, serde_json::Error> {
        let mut access = MapDeserializer::new(map.iter().map(|(k, x)| (k.as_str(), Strict(x))));
        let out = v.visit_map(&mut access)?;
        access.end()?;
        Ok(out)
    }

    fn not_object(&self) -> serde_json::Error {
        de::Error::custom(format!(
            "invalid type: {}, expected a JSON object",
            kind(self.0)
        ))
    }
}

impl<'de> de::Deserializer<'de> for Strict<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => v.visit_unit(),
            Value::Bool(b) => v.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => v.visit_u64(u),
                (None, Some(i), _) => v.visit_i64(i),
                (None, None, Some(f)) => v.visit_f64(f),
                (None, None, None) => Err(de::Error::custom("a number is out of range")),
            },
            Value::String(s) => v.visit_borrowed_str(s),
            Value::Array(items) => {
                let mut access = SeqDeserializer::new(items.iter().map(Strict));
                let out = v.visit_seq(&mut access)?;
                access.end()?;
                Ok(out)
            }
            Value::Object(map) => Self::object(map, v),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => Self::object(map, v),
            _ => Err(self.not_object()),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        self.deserialize_struct("", &[], v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Self::Error> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::String(s) => v.visit_enum(s.as_str().into_deserializer()),
            Value::Object(map) if map.len() == 1 => {
                let (variant, value) = map.iter().next().expect("one entry");
                v.visit_enum(Variant { variant, value })
            }
            _ => Err(de::Error::custom(format!(
                "invalid type: {}, expected a string or an object with one key",
                kind(self.0)
            ))),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct identifier
    }
}

/// An externally tagged enum variant `{"variant": value}`.
struct Variant<'de> {
    variant: &'de str,
    value: &'de Value,
}

impl<'de> de::EnumAccess<'de> for Variant<'de> {
    type Error = serde_json::Error;
    type Variant = Strict<'de>;

    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Strict<'de>), Self::Error> {
        let variant: de::value::BorrowedStrDeserializer<'de, serde_json::Error> =
            de::value::BorrowedStrDeserializer::new(self.variant);
        Ok((seed.deserialize(variant)?, Strict(self.value)))
    }
}

impl<'de> de::VariantAccess<'de> for Strict<'de> {
    type Error = serde_json::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        de::Deserialize::deserialize(self)
    }
    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, Self::Error> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, Self::Error> {
        de::Deserializer::deserialize_seq(self, v)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Self::Error> {
        de::Deserializer::deserialize_struct(self, "", fields, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        cidr: String,
        #[serde(default)]
        name: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        vpc: Inner,
        #[serde(default)]
        tags: Vec<BTreeMap<String, String>>,
        #[serde(default)]
        approval: Option<bool>,
    }

    fn parse(text: &[u8]) -> Result<Outer, JsonError> {
        from_value(&parse_value(text)?)
    }

    fn malformed(text: &[u8]) -> String {
        match parse(text) {
            Err(JsonError::Malformed(m)) => m,
            other => panic!(
                "{:?}: expected malformed, got {other:?}",
                String::from_utf8_lossy(text)
            ),
        }
    }

    fn invalid(text: &[u8]) -> (String, String) {
        match parse(text) {
            Err(JsonError::Invalid { path, msg }) => (path, msg),
            other => panic!(
                "{:?}: expected invalid, got {other:?}",
                String::from_utf8_lossy(text)
            ),
        }
    }

    #[test]
    fn accepts_one_object_with_surrounding_whitespace() {
        let v = parse(b" {\"vpc\": {\"cidr\": \"10.0.0.0/16\", \"name\": null}, \"tags\": [{\"k\": \"v\"}]}\n")
            .unwrap();
        assert_eq!(v.vpc.cidr, "10.0.0.0/16");
        assert_eq!(v.tags[0]["k"], "v");
    }

    #[test]
    fn refuses_trailing_garbage_and_a_second_document() {
        assert!(
            malformed(b"{\"vpc\": {\"cidr\": \"x\"}} garbage").contains("exactly one JSON value")
        );
        assert!(
            malformed(b"{\"vpc\": {\"cidr\": \"x\"}}{\"vpc\": {\"cidr\": \"y\"}}")
                .contains("exactly one JSON value")
        );
        assert!(malformed(b"{\"vpc\": {\"cidr\": \"x\"}}]").contains("exactly one JSON value"));
    }

    #[test]
    fn refuses_arrays_where_objects_are_expected() {
        let (path, msg) = invalid(br#"{"vpc": ["172.21.0.0/16", "arrayvpc"]}"#);
        assert_eq!(path, "vpc");
        assert!(msg.contains("an array, expected a JSON object"), "{msg}");
        let (path, msg) = invalid(b"[false]");
        assert_eq!(path, ".");
        assert!(msg.contains("expected a JSON object"), "{msg}");
        let (path, _) = invalid(br#"{"vpc": {"cidr": "x"}, "tags": [["k", "v"]]}"#);
        assert_eq!(path, "tags[0]");
    }

    #[test]
    fn refuses_invalid_utf8_anywhere_even_in_unknown_fields() {
        let mut body = br#"{"vpc": {"cidr": "x"}, "unknown": ""#.to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        body.extend_from_slice(b"\"}");
        assert!(malformed(&body).contains("not valid UTF-8"));
    }

    #[test]
    fn refuses_a_key_twice_in_one_object() {
        let m = malformed(br#"{"vpc": {"cidr": "x", "cidr": "y"}}"#);
        assert!(
            m.contains("\"cidr\" appears twice") && m.contains("vpc"),
            "{m}"
        );
    }

    #[test]
    fn keeps_type_errors_with_their_path() {
        let (path, msg) = invalid(br#"{"vpc": {"cidr": 5}}"#);
        assert_eq!(path, "vpc.cidr");
        assert!(msg.contains("invalid type"), "{msg}");
        let (path, _) = invalid(br#"{"vpc": {"cidr": "x", "extra": 1}}"#);
        assert_eq!(path, "vpc.extra");
        let (path, _) = invalid(br#"{"vpc": {"cidr": "x"}, "approval": [false]}"#);
        assert_eq!(path, "approval");
    }
}
