//! Picture variants: a picture scaled down to fit a box, converted to another format, or both,
//! made on request (a GET with a max width, max height or format).
//!
//! A variant is looked for in three places, in order: the byte-bounded cache in memory, the
//! store (where every server on a shared database finds what another made), and only then
//! made, on the bounded [`pool`] by [`render`]. Variants are keyed by the content they come
//! from (its SHA-256), so a replaced picture never shows an old variant, and the store drops
//! them with their content. Requests for a variant being made wait for that one result: 16
//! clients asking for the same new thumbnail at once make it once.

mod pool;
pub mod render;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use picture_protocol::{Dimensions, Format, PictureInfo, Variant as Request};
use tracing::warn;

use crate::metrics;
use crate::store::cache::{ByteCache, Weighed};
use crate::store::{Store, StoredVariant, VariantKey};
pub use pool::PoolError;
use render::{Bounds, Made, RenderError, Target};

/// How variants are made and kept.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Variants made at once: one per core by default.
    pub workers: usize,
    /// Variants that may wait for a worker; more are refused (*busy*).
    pub queue: usize,
    /// How long a variant may take, from its request to its last byte made.
    pub timeout: Duration,
    /// Largest variant, in bytes.
    pub max_bytes: usize,
    /// Bytes of variants kept in memory.
    pub cache_size: u64,
}

/// Default for [`Settings::queue`] per worker: enough to absorb a page asking for a strip of
/// thumbnails at once, few enough that a waiting one is made well within its timeout.
pub const QUEUE_PER_WORKER: usize = 8;

/// Default for [`Settings::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default for [`Settings::max_bytes`]: 16 MiB, more than any variant of a picture within the
/// default pixel limit takes as JPEG or WebP.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;

impl Default for Settings {
    fn default() -> Self {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        Settings {
            workers,
            queue: workers * QUEUE_PER_WORKER,
            timeout: DEFAULT_TIMEOUT,
            max_bytes: DEFAULT_MAX_BYTES,
            cache_size: 64 * 1024 * 1024,
        }
    }
}

/// A variant ready to send.
#[derive(Debug, Clone)]
pub struct Variant {
    pub bytes: Bytes,
    pub mime: &'static str,
    pub dimensions: Dimensions,
}

impl Weighed for Variant {
    fn bytes(&self) -> usize {
        self.bytes.len()
    }
}

/// Why no variant was made. Cloned to every request that waited for the same one.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VariantError {
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("{0}")]
    Store(String),
    #[error("the variant was not ready within its deadline of {0:?}")]
    TimedOut(Duration),
}

impl VariantError {
    /// Whether the server was too loaded to make it (try again later), rather than the
    /// picture or the store being at fault.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            VariantError::Pool(PoolError::Busy | PoolError::Deadline)
                | VariantError::Render(RenderError::Deadline)
                | VariantError::TimedOut(_)
        )
    }
}

type Flight = Shared<BoxFuture<'static, Result<Variant, VariantError>>>;

/// Removes a flight from the map when the task making it ends; the variant is in the cache
/// by then, if it was made.
struct Landing<'a> {
    flights: &'a Mutex<HashMap<VariantKey, Flight>>,
    key: VariantKey,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        self.flights
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.key);
    }
}

/// Makes, keeps and finds variants.
pub struct Variants {
    store: Arc<Store>,
    settings: Settings,
    pool: pool::Pool,
    cache: ByteCache<VariantKey, Variant>,
    /// Variants being looked for or made, each by one task that every request for it awaits.
    flights: Mutex<HashMap<VariantKey, Flight>>,
}

impl Variants {
    pub fn new(store: Arc<Store>, settings: Settings) -> Arc<Variants> {
        Arc::new(Variants {
            store,
            settings,
            pool: pool::Pool::new(settings.workers, settings.queue),
            cache: ByteCache::new(settings.cache_size),
            flights: Mutex::new(HashMap::new()),
        })
    }

    /// The variant `request` of the picture `info`, whose bytes are `bytes` or else read
    /// from the store if the variant has to be made.
    pub async fn get(
        self: &Arc<Self>,
        info: &PictureInfo,
        bytes: Option<Bytes>,
        request: Request,
    ) -> Result<Variant, VariantError> {
        // A side of the box at least as long as the picture's longest side (whichever way it
        // is turned) bounds nothing: all such boxes are one variant, not one per size asked.
        let longest = info.width.max(info.height);
        let side = |side: Option<NonZeroU32>| match side.map(NonZeroU32::get) {
            Some(side) if side < longest => side,
            _ => 0,
        };
        let key = VariantKey {
            source: info.sha256,
            max_width: side(request.max_width),
            max_height: side(request.max_height),
            // As stored when no format is asked for; a GIF or BMP becomes a PNG.
            format: request
                .format
                .or_else(|| Format::from_mime(&info.mime))
                .unwrap_or(Format::Png),
        };
        if let Some(found) = self.cache.get(&key) {
            metrics::variant_lookup("memory");
            return Ok(found);
        }
        let flight = {
            let mut flights = self
                .flights
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match flights.get(&key) {
                Some(flight) => flight.clone(),
                None => {
                    // The flight that made it may have ended since the look above.
                    if let Some(found) = self.cache.get(&key) {
                        return Ok(found);
                    }
                    let task = tokio::spawn(self.clone().find_or_make(key, info.clone(), bytes));
                    let flight = async move {
                        task.await
                            .unwrap_or(Err(VariantError::Pool(PoolError::Failed)))
                    }
                    .boxed()
                    .shared();
                    flights.insert(key, flight.clone());
                    flight
                }
            }
        };
        // The flight has its own deadline, checked between its steps; a step (a decode, a
        // slow store) can outlast it, and this request does not wait for that.
        match tokio::time::timeout(self.settings.timeout, flight).await {
            Ok(result) => result,
            Err(_) => Err(VariantError::TimedOut(self.settings.timeout)),
        }
    }

    /// Looks for the variant in the store, or makes it; keeps it in memory and in the store.
    /// Runs as a task of its own, so that it finishes for the others waiting when the request
    /// that started it goes away.
    async fn find_or_make(
        self: Arc<Self>,
        key: VariantKey,
        info: PictureInfo,
        bytes: Option<Bytes>,
    ) -> Result<Variant, VariantError> {
        // Ends the flight however this task ends, a panic included: a flight left behind
        // would answer every later request for the variant with this one's failure.
        let _landing = Landing {
            flights: &self.flights,
            key,
        };
        let result = self.find_or_make_uncached(key, &info, bytes).await;
        if let Ok(variant) = &result {
            self.cache.insert(key, variant.clone());
        }
        result
    }

    async fn find_or_make_uncached(
        &self,
        key: VariantKey,
        info: &PictureInfo,
        bytes: Option<Bytes>,
    ) -> Result<Variant, VariantError> {
        let deadline = Instant::now() + self.settings.timeout;
        let store_error = |e: crate::store::StoreError| VariantError::Store(e.to_string());
        if let Some(stored) = self.store.stored_variant(key).await.map_err(store_error)? {
            metrics::variant_lookup("store");
            return Ok(Variant {
                bytes: stored.bytes,
                mime: key.format.mime(),
                dimensions: Dimensions {
                    width: stored.width,
                    height: stored.height,
                },
            });
        }
        // A place in the pool before the original is read: a full pool turns requests away
        // before they hold pictures in memory.
        let admitted = self.pool.admit()?;
        let original = match bytes {
            Some(bytes) => bytes,
            None => self.store.bytes_of(info).await.map_err(store_error)?,
        };
        let target = Target {
            max_width: NonZeroU32::new(key.max_width),
            max_height: NonZeroU32::new(key.max_height),
            format: key.format,
        };
        let bounds = Bounds {
            max_pixels: self.store.upload_rules().max_pixels,
            max_bytes: self.settings.max_bytes,
            deadline,
        };
        let source = original.clone();
        let made = admitted
            .run(deadline, move || {
                let started = Instant::now();
                let made = render::render(&source, target, bounds);
                metrics::variant_rendered(key.format.name(), started.elapsed(), made.is_ok());
                made
            })
            .await??;
        metrics::variant_lookup("made");
        match made {
            // Fits the box already, in the format asked for: the picture itself, which is
            // not stored twice.
            Made::Original(dimensions) => Ok(Variant {
                bytes: original,
                mime: key.format.mime(),
                dimensions,
            }),
            Made::Variant { bytes, dimensions } => {
                let bytes = Bytes::from(bytes);
                let stored = StoredVariant {
                    width: dimensions.width,
                    height: dimensions.height,
                    bytes: bytes.clone(),
                };
                // Not keeping it costs only its making again, on the next restart.
                if let Err(e) = self.store.keep_variant(key, stored).await {
                    warn!("cannot keep a variant of {:?} in the store: {e}", info.name);
                }
                Ok(Variant {
                    bytes,
                    mime: key.format.mime(),
                    dimensions,
                })
            }
        }
    }
}
