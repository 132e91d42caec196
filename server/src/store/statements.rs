//! The SQL both databases run for a catalog edit, written once.
//!
//! The text uses PostgreSQL's `$n` placeholders; SQLite reads the same statements with `?n`
//! (see [`for_sqlite`]), which it numbers the same way. Positions are 1-based picture numbers.

use std::borrow::Cow;

use picture_protocol::PictureInfo;

use super::catalog::{Edit, name_key};

/// One parameter of a statement. Integers are 64-bit: PostgreSQL's columns are `bigint`.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    Int(i64),
    Text(Cow<'a, str>),
    Bytes(&'a [u8]),
}

/// One statement of an edit, with its parameters.
pub struct Statement<'a> {
    pub sql: &'static str,
    pub params: Vec<Value<'a>>,
    /// Whether it must change exactly one row: any other count means the rows are not where
    /// the catalog in memory says, and the whole edit is abandoned.
    pub changes_one_row: bool,
}

/// The statements that make `edit`, in order.
pub fn edit_statements(edit: &Edit) -> Vec<Statement<'_>> {
    let position = |index: usize| Value::Int(index as i64 + 1);
    let one = |sql, params| Statement {
        sql,
        params,
        changes_one_row: true,
    };
    let any = |sql, params| Statement {
        sql,
        params,
        changes_one_row: false,
    };
    match edit {
        // The entry's number is its position: the catalog's length plus one.
        Edit::Append(info) => vec![one(
            "INSERT INTO pictures (position, name, name_key, title, sha256)
             VALUES ($1, $2, $3, $4, $5)",
            vec![
                Value::Int(info.number.into()),
                text(&info.name),
                Value::Text(name_key(&info.name).into()),
                text(&info.title),
                Value::Bytes(&info.sha256),
            ],
        )],
        Edit::Replace(index, info) => vec![one(
            "UPDATE pictures SET name = $2, name_key = $3, title = $4, sha256 = $5
             WHERE position = $1",
            vec![
                position(*index),
                text(&info.name),
                Value::Text(name_key(&info.name).into()),
                text(&info.title),
                Value::Bytes(&info.sha256),
            ],
        )],
        Edit::Remove(index) => vec![
            one(
                "DELETE FROM pictures WHERE position = $1",
                vec![position(*index)],
            ),
            any(
                "UPDATE pictures SET position = position - 1 WHERE position > $1",
                vec![position(*index)],
            ),
        ],
        Edit::Rename(index, name) => vec![one(
            "UPDATE pictures SET name = $2, name_key = $3 WHERE position = $1",
            vec![
                position(*index),
                text(name),
                Value::Text(name_key(name).into()),
            ],
        )],
        Edit::Retitle(index, title) => vec![one(
            "UPDATE pictures SET title = $2 WHERE position = $1",
            vec![position(*index), text(title)],
        )],
        Edit::Move(from, to) => {
            // Out of the way at position 0, the others closed up, then into its place.
            let shift = if from < to {
                "UPDATE pictures SET position = position - 1
                 WHERE position > $1 AND position <= $2"
            } else {
                "UPDATE pictures SET position = position + 1
                 WHERE position >= $2 AND position < $1"
            };
            vec![
                one(
                    "UPDATE pictures SET position = 0 WHERE position = $1",
                    vec![position(*from)],
                ),
                any(shift, vec![position(*from), position(*to)]),
                one(
                    "UPDATE pictures SET position = $1 WHERE position = 0",
                    vec![position(*to)],
                ),
            ]
        }
    }
}

/// Records a content (what pictures point to) unless it is there already; the number of rows
/// it changes says whether its bytes must be stored too.
pub fn insert_content(info: &PictureInfo) -> Statement<'_> {
    Statement {
        sql: "INSERT INTO contents (sha256, mime, width, height, size)
              VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        params: vec![
            Value::Bytes(&info.sha256),
            text(&info.mime),
            Value::Int(info.width.into()),
            Value::Int(info.height.into()),
            Value::Int(info.size.into()),
        ],
        changes_one_row: false,
    }
}

/// Stores a content's bytes unless they are there. (Not only for a new content: the
/// not-found picture keeps its bytes in the database even when an object store holds the
/// same content's for a picture.)
pub fn insert_blob<'a>(sha256: &'a [u8; 32], bytes: &'a [u8]) -> Statement<'a> {
    Statement {
        sql: "INSERT INTO blobs (sha256, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        params: vec![Value::Bytes(sha256), Value::Bytes(bytes)],
        changes_one_row: false,
    }
}

/// The position of the picture with this name (by [`name_key`]).
pub const POSITION_OF_NAME: &str = "SELECT position FROM pictures WHERE name_key = $1";

/// The catalog in menu order, one row per picture: position, name, title, mime, width,
/// height, size, sha256.
pub const CATALOG: &str =
    "SELECT p.position, p.name, p.title, c.mime, c.width, c.height, c.size, c.sha256
     FROM pictures p JOIN contents c ON c.sha256 = p.sha256
     ORDER BY p.position";

/// The bytes of one content.
pub const BLOB: &str = "SELECT bytes FROM blobs WHERE sha256 = $1";

/// SQLite's spelling of a statement: `?n` for `$n`.
pub fn for_sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}

fn text(s: &str) -> Value<'_> {
    Value::Text(Cow::Borrowed(s))
}
