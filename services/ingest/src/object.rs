//! Structs read from JSON objects only. serde's derived `Deserialize` for a struct also
//! accepts a JSON array of its field values in order (`"person": ["A1234BC", null]`), which
//! the OpenAPI document does not allow and no source means; serde has no attribute to turn
//! that off, so this adapter does it: it hands the derived visitor to `deserialize_map`, and
//! the array is refused with "invalid type: sequence, expected struct …" at its path.
//!
//! Use [`object`] and [`optional_object`] as `deserialize_with` on struct-typed fields, and
//! [`Object`] for a whole document.

use serde::de::{Deserialize, Deserializer, Visitor};

/// A deserializer that reads whatever is asked of it as a map.
struct MapOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// `T` read from a JSON object; an array is refused.
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(MapOnly(d)).map(Object)
    }
}

/// `deserialize_with` for a struct-typed field.
pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Object::deserialize(d).map(|Object(t)| t)
}

/// `deserialize_with` for an `Option` of a struct: null or absent (with `default`) is `None`.
pub fn optional_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<Object<T>>::deserialize(d).map(|o| o.map(|Object(t)| t))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        a: u8,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        #[serde(deserialize_with = "object")]
        inner: Inner,
        #[serde(default, deserialize_with = "optional_object")]
        maybe: Option<Inner>,
    }

    fn read(json: &str) -> Result<Outer, String> {
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        serde_path_to_error::deserialize::<_, Object<Outer>>(&value)
            .map(|Object(o)| o)
            .map_err(|e| format!("{}: {}", e.path(), e.inner()))
    }

    #[test]
    fn objects_are_read_and_arrays_refused_at_their_path() {
        assert_eq!(
            read(r#"{"inner": {"a": 1}, "maybe": {"a": 2}}"#),
            Ok(Outer {
                inner: Inner { a: 1 },
                maybe: Some(Inner { a: 2 })
            })
        );
        assert_eq!(
            read(r#"{"inner": {"a": 1}, "maybe": null}"#).map(|o| o.maybe),
            Ok(None)
        );
        assert_eq!(read(r#"{"inner": {"a": 1}}"#).map(|o| o.maybe), Ok(None));
        let refused = read(r#"{"inner": [1]}"#).unwrap_err();
        assert!(
            refused.starts_with("inner: invalid type: sequence"),
            "{refused}"
        );
        let refused = read(r#"{"inner": {"a": 1}, "maybe": [2]}"#).unwrap_err();
        assert!(
            refused.starts_with("maybe: invalid type: sequence"),
            "{refused}"
        );
        let refused = read(r#"[{"a": 1}]"#).unwrap_err();
        assert!(refused.contains("invalid type: sequence"), "{refused}");
    }
}
