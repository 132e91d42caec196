//! Variants kept in the database: a picture scaled down or converted, computed once and read
//! back by every server on the store (see `crate::variants`). A variant belongs to a content,
//! not to a picture name: deleting the last picture that holds a content deletes the content,
//! and its variants with it (`ON DELETE CASCADE`).

use bytes::Bytes;
use picture_protocol::Format;

use super::statements::Value;

/// What a variant was asked for: the content it is made from, the box it fits in (0: no
/// bound on that side) and its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VariantKey {
    pub source: [u8; 32],
    pub max_width: u32,
    pub max_height: u32,
    pub format: Format,
}

/// A variant as stored: its dimensions and its bytes, in the key's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVariant {
    pub width: u32,
    pub height: u32,
    pub bytes: Bytes,
}

/// A stored variant's width, height and bytes.
pub const VARIANT: &str = "SELECT width, height, bytes FROM variants
     WHERE source = $1 AND max_width = $2 AND max_height = $3 AND format = $4";

/// Variants kept in the database for one content, at most. Every box a client names is a
/// variant of its own: without a bound, anyone who may read could fill the disk by asking for
/// each size in turn. Past it, variants are made and kept in memory only. (The count and the
/// insert are one statement: exact in SQLite, whose writes take turns; on PostgreSQL, servers
/// inserting for one picture at the same moment may each see room for one more.)
pub const MAX_KEPT_PER_PICTURE: i64 = 32;

/// Keeps a variant unless one is there, its content is gone (deleted while it was made), or
/// the content has [`MAX_KEPT_PER_PICTURE`] kept already.
pub const INSERT_VARIANT: &str =
    "INSERT INTO variants (source, max_width, max_height, format, width, height, bytes)
     SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM contents WHERE sha256 = $1)
     AND (SELECT count(*) FROM variants WHERE source = $1) < $8
     ON CONFLICT DO NOTHING";

impl VariantKey {
    /// The parameters of [`VARIANT`].
    pub fn params(&self) -> [Value<'_>; 4] {
        [
            Value::Bytes(&self.source),
            Value::Int(self.max_width.into()),
            Value::Int(self.max_height.into()),
            Value::Int(self.format as i64),
        ]
    }

    /// The parameters of [`INSERT_VARIANT`].
    pub fn insert_params<'a>(&'a self, variant: &'a StoredVariant) -> [Value<'a>; 8] {
        let [source, max_width, max_height, format] = self.params();
        [
            source,
            max_width,
            max_height,
            format,
            Value::Int(variant.width.into()),
            Value::Int(variant.height.into()),
            Value::Bytes(&variant.bytes),
            Value::Int(MAX_KEPT_PER_PICTURE),
        ]
    }
}
