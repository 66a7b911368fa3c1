//! The catalog: mappings and fields as the engine runs them, read from ferry.* (so a psql
//! admin can change them live).

use std::sync::Arc;

use postgres_protocol::escape::escape_identifier;
use tokio_postgres::GenericClient;

use super::HubError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Both,
    Inbound,
    Outbound,
}

impl Direction {
    fn parse(s: &str) -> Direction {
        match s {
            "inbound" => Direction::Inbound,
            "outbound" => Direction::Outbound,
            _ => Direction::Both,
        }
    }
    /// Values flow from the app into the hub.
    pub fn inbound(self) -> bool {
        matches!(self, Direction::Both | Direction::Inbound)
    }
    /// Values flow from the hub to the app.
    pub fn outbound(self) -> bool {
        matches!(self, Direction::Both | Direction::Outbound)
    }
}

#[derive(Debug, Clone)]
pub struct Field {
    pub column: String,
    pub property: String,
    pub ty: String,
    pub direction: Direction,
    pub transform: Option<String>,
    /// `{hub value: app value}` (config `map`), applied both ways.
    pub value_map: Option<ValueMap>,
    /// The mapping whose rows this column's row keys name (`references`); its app gets the
    /// referenced record's id.
    pub references: Option<i32>,
}

/// A field's value map, both ways, and what an unmapped value does.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueMap {
    pub to_app: std::collections::BTreeMap<String, String>,
    pub to_hub: std::collections::BTreeMap<String, String>,
    /// Unmapped values pass as they are (`unmapped = "pass"`); false: they are refused.
    pub pass: bool,
}

impl ValueMap {
    pub fn new(to_app: std::collections::BTreeMap<String, String>, pass: bool) -> ValueMap {
        let to_hub = to_app.iter().map(|(h, a)| (a.clone(), h.clone())).collect();
        ValueMap {
            to_app,
            to_hub,
            pass,
        }
    }

    /// `value` through `table`: null stays null; a scalar is looked up by its text; unmapped
    /// values pass or are refused (the error names the known values).
    fn translate(
        &self,
        table: &std::collections::BTreeMap<String, String>,
        value: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        use serde_json::Value;
        let key = match &value {
            Value::Null => return Ok(Value::Null),
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return if self.pass {
                    Ok(value)
                } else {
                    Err("a list or object cannot be mapped".into())
                }
            }
        };
        match table.get(&key) {
            Some(mapped) => Ok(Value::String(mapped.clone())),
            None if self.pass => Ok(value),
            None => Err(format!(
                "value {value} is not in the field's map (known: {})",
                table.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }
}

impl Field {
    /// Applies the field's transform to a text value (both directions).
    pub fn transform(&self, value: String) -> String {
        match self.transform_str(&value) {
            std::borrow::Cow::Borrowed(_) => value,
            std::borrow::Cow::Owned(changed) => changed,
        }
    }

    /// A hub value as the app takes it: transformed, then mapped (`map`).
    pub fn to_app(&self, value: serde_json::Value) -> Result<serde_json::Value, String> {
        let value = self.transform_value(value);
        match &self.value_map {
            Some(m) => m.translate(&m.to_app, value),
            None => Ok(value),
        }
    }

    /// An app value as the hub keeps it: mapped back, then transformed; for a `text` column a
    /// number, boolean, list or object becomes its JSON text here, as the column would cast it,
    /// so the link's base compares equal to the row (a base of 42 against a row's "42" would
    /// read as a hub change and go back to the app).
    pub fn to_hub(&self, value: serde_json::Value) -> Result<serde_json::Value, String> {
        use serde_json::Value;
        let value = match &self.value_map {
            Some(m) => m.translate(&m.to_hub, value)?,
            None => value,
        };
        let value = match value {
            Value::Null | Value::String(_) => value,
            other if self.ty == "text" => Value::String(other.to_string()),
            other => other,
        };
        Ok(self.transform_value(value))
    }

    /// [`Field::transform`] of a typed value: strings transformed, other values as they are.
    pub fn transform_value(&self, value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::String(s) if self.transform.is_some() => {
                serde_json::Value::String(self.transform(s))
            }
            other => other,
        }
    }

    /// [`Field::transform`] of a borrowed value: borrowed back when the field has no transform.
    pub fn transform_str<'v>(&self, value: &'v str) -> std::borrow::Cow<'v, str> {
        match self.transform.as_deref() {
            Some("lowercase") => value.to_lowercase().into(),
            Some("uppercase") => value.to_uppercase().into(),
            Some("trim") => value.trim().to_string().into(),
            _ => value.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Mapping {
    pub id: i32,
    pub name: String,
    pub connection: String,
    pub object: String,
    pub schema: String,
    pub table: String,
    pub key_column: String,
    pub id_column: String,
    /// Not paused: the hub's changes are sent. Pausing holds only what ferry sends; the app's
    /// changes keep arriving.
    pub active: bool,
    pub backfill_done: bool,
    /// Hub column whose remote property identifies a record (e.g. email).
    pub match_key: Option<String>,
    /// Remote deletions set `_deleted_at` instead of deleting the row.
    pub soft_delete: bool,
    /// A hub deletion deletes the record in the app (`on_hub_delete = "delete"`); false: the
    /// record stays there, unlinked.
    pub deletes_in_app: bool,
    /// Which rows the app gets (an SQL predicate on the row), none: all.
    pub filter: Option<String>,
    pub fields: Vec<Field>,
}

impl Mapping {
    /// `"schema"."table"`, quoted.
    pub fn qualified(&self) -> String {
        format!(
            "{}.{}",
            escape_identifier(&self.schema),
            escape_identifier(&self.table)
        )
    }
    /// The field of the match key, if the mapping has one.
    pub fn match_field(&self) -> Option<&Field> {
        let key = self.match_key.as_deref()?;
        self.fields.iter().find(|f| f.column == key)
    }
    pub fn properties(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.property.clone()).collect()
    }

    /// A HubSpot contacts mapping with these fields, for unit tests.
    #[cfg(test)]
    pub fn for_tests(fields: Vec<Field>) -> Mapping {
        Mapping {
            id: 1,
            name: "m".into(),
            connection: "hubspot".into(),
            object: "contacts".into(),
            schema: "hubspot".into(),
            table: "contacts".into(),
            key_column: "id".into(),
            id_column: "hubspot_id".into(),
            active: true,
            backfill_done: true,
            match_key: None,
            soft_delete: false,
            deletes_in_app: true,
            filter: None,
            fields,
        }
    }
}

/// The mappings of the hub, as loaded at one moment.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub mappings: Vec<Arc<Mapping>>,
}

impl Catalog {
    pub async fn load(client: &impl GenericClient) -> Result<Catalog, HubError> {
        let rows = client
            .query(
                "select id, name, connection, remote_object, hub_schema, hub_table, key_column, id_column,
                        state = 'active', backfill_state = 'done', match_key, soft_delete,
                        on_hub_delete = 'delete', row_filter
                   from ferry.mappings order by id",
                &[],
            )
            .await?;
        let field_rows = client
            .query(
                "select f.mapping_id, f.hub_column, f.remote_property, f.type, f.direction, f.transform,
                        f.value_map, f.unmapped = 'pass', r.id
                   from ferry.fields f left join ferry.mappings r on r.name = f.references_mapping
                  order by f.mapping_id, f.position",
                &[],
            )
            .await?;
        let mappings = rows
            .iter()
            .map(|r| {
                let id: i32 = r.get(0);
                Arc::new(Mapping {
                    id,
                    name: r.get(1),
                    connection: r.get(2),
                    object: r.get(3),
                    schema: r.get(4),
                    table: r.get(5),
                    key_column: r.get(6),
                    id_column: r.get(7),
                    active: r.get(8),
                    backfill_done: r.get(9),
                    match_key: r.get(10),
                    soft_delete: r.get(11),
                    deletes_in_app: r.get(12),
                    filter: r.get(13),
                    fields: field_rows
                        .iter()
                        .filter(|f| f.get::<_, i32>(0) == id)
                        .map(|f| Field {
                            column: f.get(1),
                            property: f.get(2),
                            ty: f.get(3),
                            direction: Direction::parse(f.get(4)),
                            transform: f.get(5),
                            value_map: f
                                .get::<_, Option<serde_json::Value>>(6)
                                .and_then(|v| serde_json::from_value(v).ok())
                                .map(|m| ValueMap::new(m, f.get(7))),
                            references: f.get(8),
                        })
                        .collect(),
                })
            })
            .collect();
        Ok(Catalog { mappings })
    }

    pub fn by_id(&self, id: i32) -> Option<&Arc<Mapping>> {
        self.mappings.iter().find(|m| m.id == id)
    }

    pub fn by_object(&self, connection: &str, object: &str) -> Option<&Arc<Mapping>> {
        self.mappings
            .iter()
            .find(|m| m.connection == connection && m.object == object)
    }

    /// Mappings whose hub table is `schema.table`.
    pub fn by_table<'a>(
        &'a self,
        schema: &'a str,
        table: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Mapping>> + 'a {
        self.mappings
            .iter()
            .filter(move |m| m.schema == schema && m.table == table)
    }
}
