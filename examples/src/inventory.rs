//! A robot workshop's parts inventory: the example service with rich types.
//!
//! Where the calculator passes one `f64`, this service passes structs, enums
//! (unit and data-carrying variants), `Option`, `Vec`, maps, text in any
//! script and integers up to `i64`'s limits, and `add` takes six parameters
//! that callers may name. On the wire a part is a JSON object:
//!
//! ```json
//! {"name": "wrist motor", "kind": "motor", "count": 4, "weight_kg": 0.35,
//!  "tags": ["arm"], "supplier": null, "attributes": {}}
//! ```
//!
//! and a kind is `"motor"`, `"sensor"`, `"gripper"` or
//! `{"camera": {"width": 640, "height": 480}}`. Peers in other languages
//! serve the same interface on plain dictionaries.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The inventory's interface.
#[redisrpc::rpc]
pub trait Inventory {
    /// Adds a part built from its fields, replacing any part of the same
    /// name, and returns it. Fails when `count` is negative.
    async fn add(
        &self,
        name: String,
        kind: PartKind,
        count: i64,
        weight_kg: f64,
        tags: Vec<String>,
        supplier: Option<String>,
    ) -> Result<Part, InventoryError>;
    /// Stores a whole part, replacing any part of the same name, and returns it.
    async fn put(&self, part: Part) -> Part;
    /// The part called `name`, if there is one.
    fn get(&self, name: String) -> Option<Part>;
    /// The parts, sorted by name; only those of `kind` when it is given.
    fn list(&self, kind: Option<PartKind>) -> Vec<Part>;
    /// How many of each part there are, by name.
    fn counts(&self) -> BTreeMap<String, i64>;
    /// Removes the part called `name` and returns it.
    async fn remove(&self, name: String) -> Result<Part, InventoryError>;
    /// Returns `value` unchanged: any JSON, for checking what survives a
    /// round trip.
    fn echo(&self, value: Value) -> Value;
}

/// A part in stock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Its name, unique in the inventory.
    pub name: String,
    /// What kind of part it is.
    pub kind: PartKind,
    /// How many are in stock.
    pub count: i64,
    /// The weight of one, in kilograms.
    pub weight_kg: f64,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Who supplies it, when known.
    pub supplier: Option<String>,
    /// Anything else worth recording.
    pub attributes: BTreeMap<String, Value>,
}

/// The kinds of parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    /// A motor.
    Motor,
    /// A sensor.
    Sensor,
    /// A gripper.
    Gripper,
    /// A camera and its resolution.
    Camera {
        /// Pixels across.
        width: u32,
        /// Pixels down.
        height: u32,
    },
}

/// Why an inventory call failed; its text is what callers receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryError {
    /// `add` was given a negative count.
    NegativeCount,
    /// No part has this name.
    NoSuchPart(String),
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InventoryError::NegativeCount => f.write_str("count must not be negative"),
            InventoryError::NoSuchPart(name) => write!(f, "no part named `{name}`"),
        }
    }
}

impl std::error::Error for InventoryError {}

/// An inventory kept in memory.
#[derive(Debug, Default)]
pub struct Stock {
    // A std mutex: held for one map operation, never across an await.
    parts: Mutex<BTreeMap<String, Part>>,
}

impl Stock {
    fn parts(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Part>> {
        self.parts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inventory for Stock {
    async fn add(
        &self,
        name: String,
        kind: PartKind,
        count: i64,
        weight_kg: f64,
        tags: Vec<String>,
        supplier: Option<String>,
    ) -> Result<Part, InventoryError> {
        if count < 0 {
            return Err(InventoryError::NegativeCount);
        }
        let part = Part {
            name,
            kind,
            count,
            weight_kg,
            tags,
            supplier,
            attributes: BTreeMap::new(),
        };
        Ok(self.put(part).await)
    }

    async fn put(&self, part: Part) -> Part {
        self.parts().insert(part.name.clone(), part.clone());
        part
    }

    fn get(&self, name: String) -> Option<Part> {
        self.parts().get(&name).cloned()
    }

    fn list(&self, kind: Option<PartKind>) -> Vec<Part> {
        let parts = self.parts();
        let wanted = |part: &&Part| kind.as_ref().is_none_or(|kind| part.kind == *kind);
        parts.values().filter(wanted).cloned().collect()
    }

    fn counts(&self) -> BTreeMap<String, i64> {
        self.parts()
            .values()
            .map(|part| (part.name.clone(), part.count))
            .collect()
    }

    async fn remove(&self, name: String) -> Result<Part, InventoryError> {
        self.parts().remove(&name).ok_or(InventoryError::NoSuchPart(name))
    }

    fn echo(&self, value: Value) -> Value {
        value
    }
}

/// An empty inventory as a service, ready for [`redisrpc::Server::new`].
pub fn service() -> InventoryServer<Stock> {
    InventoryServer::new(Stock::default())
}
