//! Where the registry keeps ended calls' views: their JSON appended to large chunks, freed a
//! whole chunk at a time once every view in it has gone.
//!
//! Why: ended calls leave in the order they ended (retention, then the count bound), and a
//! burst of calls ends while the heap is full of its own short-lived state. A thousand small
//! views allocated then, a dozen strings each, stay scattered over pages that are otherwise
//! free, so the heap can never give those pages back (measured: ~6 KB of RSS pinned per
//! retained call after a burst of abandoned INVITEs, growing burst after burst). Packed into
//! 64 KB chunks, the same views pin a few chunks, released whole when they expire.
//!
//! Owns: the chunks and which views in each are still wanted. Must not: decide retention
//! (the registry removes views; this only counts), or panic on a stale or foreign [`Loc`].

use std::collections::VecDeque;

use crate::core::call::CallView;

/// Bytes per chunk; a larger view gets a chunk of its own.
const CHUNK: usize = 64 * 1024;

/// A view's JSON, built before the registry's lock is taken.
pub fn pack(view: &CallView) -> Option<Vec<u8>> {
    serde_json::to_vec(view).ok()
}

/// A view back from its JSON.
pub fn unpack(json: &[u8]) -> Option<CallView> {
    serde_json::from_slice(json).ok()
}

/// Where one packed view is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    chunk: u64,
    start: u32,
    len: u32,
}

struct Chunk {
    bytes: Vec<u8>,
    /// Views in this chunk not yet removed.
    live: usize,
}

/// The chunks, oldest first; `first` numbers the front one.
#[derive(Default)]
pub struct Packed {
    chunks: VecDeque<Chunk>,
    first: u64,
}

impl Packed {
    /// Keeps `json` (a view from [`pack`]); `None` only for one over 4 GB.
    pub fn put(&mut self, json: &[u8]) -> Option<Loc> {
        let len = u32::try_from(json.len()).ok()?;
        let fits = self
            .chunks
            .back()
            .is_some_and(|c| c.bytes.capacity() - c.bytes.len() >= json.len());
        if !fits {
            self.chunks.push_back(Chunk {
                bytes: Vec::with_capacity(CHUNK.max(json.len())),
                live: 0,
            });
        }
        let number = self.first + self.chunks.len() as u64 - 1;
        let chunk = self.chunks.back_mut()?;
        let start = u32::try_from(chunk.bytes.len()).ok()?;
        chunk.bytes.extend_from_slice(json);
        chunk.live += 1;
        Some(Loc {
            chunk: number,
            start,
            len,
        })
    }

    /// The JSON of the view at `loc` (`None` for a location that is gone).
    pub fn get(&self, loc: Loc) -> Option<&[u8]> {
        let chunk = self
            .chunks
            .get(usize::try_from(loc.chunk.checked_sub(self.first)?).ok()?)?;
        let start = loc.start as usize;
        chunk.bytes.get(start..start.checked_add(loc.len as usize)?)
    }

    /// Forgets the view at `loc`; chunks at the front with nothing left in them are freed
    /// (the newest one stays, for the next view).
    pub fn remove(&mut self, loc: Loc) {
        let Some(i) = loc
            .chunk
            .checked_sub(self.first)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return;
        };
        if let Some(c) = self.chunks.get_mut(i) {
            c.live = c.live.saturating_sub(1);
        }
        while self.chunks.len() > 1 && self.chunks.front().is_some_and(|c| c.live == 0) {
            self.chunks.pop_front();
            self.first += 1;
        }
        if self.chunks.len() == 1 && self.chunks.front().is_some_and(|c| c.live == 0) {
            // Empty and alone: start it again from its beginning (its capacity stays).
            if let Some(c) = self.chunks.front_mut() {
                c.bytes.clear();
            }
        }
    }

    /// Chunks held (for tests).
    #[cfg(test)]
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }
}
