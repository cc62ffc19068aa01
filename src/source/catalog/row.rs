//! One row of a catalog query, read the same way whether it came from the
//! server as a row (a whole-catalog read, one query per kind) or as a JSON
//! object (a targeted read, where every kind's rows come back in one
//! statement as `jsonb_agg(to_jsonb(row))`). Text, booleans, integers and
//! text arrays survive JSON unchanged, so both give the same objects.

use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::error::{Error, Result};

/// A row whose columns can be read by name.
pub(super) trait CatalogRow {
    /// Column `name` as `T`.
    fn field<T: Field>(&self, name: &str) -> Result<T>;
}

impl CatalogRow for PgRow {
    fn field<T: Field>(&self, name: &str) -> Result<T> {
        T::from_pg(self, name)
    }
}

/// A row that came back as a JSON object.
pub(super) type JsonRow = Map<String, Value>;

impl CatalogRow for JsonRow {
    fn field<T: Field>(&self, name: &str) -> Result<T> {
        T::from_json(self.get(name).unwrap_or(&Value::Null)).ok_or_else(|| {
            Error::Invalid(format!(
                "catalog column {name}: unexpected value {:?} (hint: this is a bug in phantom-sync's catalog queries)",
                self.get(name)
            ))
        })
    }
}

/// A column type the catalog queries return.
pub(super) trait Field: Sized {
    fn from_pg(row: &PgRow, name: &str) -> Result<Self>;
    fn from_json(value: &Value) -> Option<Self>;
}

macro_rules! pg_field {
    ($t:ty, $json:expr) => {
        impl Field for $t {
            fn from_pg(row: &PgRow, name: &str) -> Result<Self> {
                row.try_get(name)
                    .map_err(Error::db(format!("decoding catalog column {name}")))
            }
            fn from_json(value: &Value) -> Option<Self> {
                let read: fn(&Value) -> Option<Self> = $json;
                read(value)
            }
        }
    };
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_string)
}

fn texts(value: &Value) -> Option<Vec<String>> {
    value.as_array()?.iter().map(text).collect()
}

pg_field!(String, text);
pg_field!(Option<String>, |v| match v {
    Value::Null => Some(None),
    other => text(other).map(Some),
});
pg_field!(bool, Value::as_bool);
pg_field!(i64, Value::as_i64);
pg_field!(Vec<String>, texts);
pg_field!(Option<Vec<String>>, |v| match v {
    Value::Null => Some(None),
    other => texts(other).map(Some),
});
pg_field!(Vec<Option<String>>, |v| {
    v.as_array()?
        .iter()
        .map(|item| match item {
            Value::Null => Some(None),
            other => text(other).map(Some),
        })
        .collect()
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rows_read_like_server_rows() {
        let row: JsonRow = serde_json::from_str(
            r#"{"s": "a\nb", "n": null, "b": true, "i": 9223372036854775807,
                "v": ["x", "y,z"], "o": ["r", null]}"#,
        )
        .unwrap();
        assert_eq!(row.field::<String>("s").unwrap(), "a\nb");
        assert_eq!(row.field::<Option<String>>("n").unwrap(), None);
        assert_eq!(row.field::<Option<String>>("missing").unwrap(), None);
        assert!(row.field::<bool>("b").unwrap());
        assert_eq!(row.field::<i64>("i").unwrap(), i64::MAX);
        assert_eq!(row.field::<Vec<String>>("v").unwrap(), vec!["x", "y,z"]);
        assert_eq!(row.field::<Option<Vec<String>>>("n").unwrap(), None);
        assert_eq!(
            row.field::<Vec<Option<String>>>("o").unwrap(),
            vec![Some("r".to_string()), None]
        );
        assert!(row.field::<String>("n").is_err());
        assert!(row.field::<bool>("s").is_err());
    }
}
