//! Memory for upstream packuments in flight: being downloaded, waiting to be indexed, being
//! stored. A download reserves room for its bytes as they arrive (all at once when upstream
//! says how many); when the budget is spent it waits, at most the uplink's timeout, then gives
//! up. The buffer gives its room back when it is freed, or as soon as the packument cache takes
//! it over (the cache counts it then; [`Room::release`]).

use bytes::{Bytes, BytesMut};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Budget units (a semaphore counts permits in `u32`).
const UNIT: u64 = 64 * 1024;

fn units(bytes: u64) -> u32 {
    bytes.div_ceil(UNIT).min(u32::MAX as u64) as u32
}

#[derive(Clone)]
pub struct Budget {
    permits: Arc<Semaphore>,
    bytes: u64,
}

/// The room a buffer holds; shared by the buffer and whoever may take it over.
#[derive(Default)]
pub struct Room(Mutex<Option<OwnedSemaphorePermit>>);

impl Room {
    /// Gives the room back now (the bytes are counted elsewhere from here on).
    pub fn release(&self) {
        self.0.lock().expect("not poisoned").take();
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0} MiB of upstream documents are in flight already; try again shortly")]
pub struct Exhausted(u64);

impl Budget {
    pub fn new(bytes: u64) -> Self {
        Budget {
            permits: Arc::new(Semaphore::new(units(bytes) as usize)),
            bytes,
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> u64 {
        let free = self.permits.available_permits() as u64 * UNIT;
        self.bytes.div_ceil(UNIT) * UNIT - free
    }

    /// An empty buffer with room for `expected` bytes reserved.
    pub async fn buffer(&self, expected: u64, wait: Duration) -> Result<Buffer, Exhausted> {
        let mut b = Buffer {
            budget: self.clone(),
            bytes: BytesMut::new(),
            room: Arc::new(Room::default()),
            reserved: 0,
            wait,
        };
        b.cover(expected).await?;
        b.bytes.reserve(expected as usize);
        Ok(b)
    }
}

/// Bytes being received under the budget.
pub struct Buffer {
    budget: Budget,
    bytes: BytesMut,
    room: Arc<Room>,
    reserved: u32,
    wait: Duration,
}

/// The bytes of a finished buffer and their room, freed with the last slice of them.
struct Owned {
    bytes: BytesMut,
    room: Arc<Room>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.room.release();
        crate::allocator::freed(self.bytes.len());
    }
}

impl AsRef<[u8]> for Owned {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Buffer {
    async fn cover(&mut self, total: u64) -> Result<(), Exhausted> {
        let want = units(total);
        if want <= self.reserved {
            return Ok(());
        }
        let all = units(self.budget.bytes);
        if want > all {
            return Err(Exhausted(self.budget.bytes >> 20));
        }
        // Grow in doublings, so that a long download asks the semaphore a few times only.
        let more = (want - self.reserved).max(self.reserved).min(all - self.reserved);
        let permit = match self.budget.permits.clone().try_acquire_many_owned(more) {
            Ok(p) => p,
            Err(_) => tokio::time::timeout(self.wait, self.budget.permits.clone().acquire_many_owned(more))
                .await
                .map_err(|_| Exhausted(self.budget.bytes >> 20))?
                .map_err(|_| Exhausted(self.budget.bytes >> 20))?,
        };
        let mut slot = self.room.0.lock().expect("not poisoned");
        match slot.as_mut() {
            Some(held) => held.merge(permit),
            None => *slot = Some(permit),
        }
        self.reserved += more;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Appends `chunk`, waiting for room first.
    pub async fn extend(&mut self, chunk: &[u8]) -> Result<(), Exhausted> {
        self.cover((self.bytes.len() + chunk.len()) as u64).await?;
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// The bytes, holding their room until the last slice of them is dropped or the room is
    /// released.
    pub fn freeze(self) -> (Bytes, Arc<Room>) {
        let needed = units(self.bytes.len() as u64);
        if let Some(held) = self.room.0.lock().expect("not poisoned").as_mut()
            && self.reserved > needed
        {
            drop(held.split((self.reserved - needed) as usize));
        }
        let room = self.room.clone();
        let bytes = Bytes::from_owner(Owned {
            bytes: self.bytes,
            room: self.room,
        });
        (bytes, room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn room_comes_back_when_the_bytes_are_freed_or_released() {
        let budget = Budget::new(4 * UNIT);
        let wait = Duration::from_millis(50);
        let mut a = budget.buffer(0, wait).await.unwrap();
        a.extend(&vec![0u8; 3 * UNIT as usize]).await.unwrap();
        let (bytes, room) = a.freeze();
        assert_eq!(budget.permits.available_permits(), 1);
        // The budget is spent: a second download waits, then gives up.
        let mut b = budget.buffer(0, wait).await.unwrap();
        assert!(b.extend(&vec![0u8; 2 * UNIT as usize]).await.is_err());
        let slice = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(budget.permits.available_permits(), 1, "a slice keeps the buffer");
        drop(slice);
        assert_eq!(budget.permits.available_permits(), 4);
        let c = budget.buffer(3 * UNIT, wait).await.unwrap();
        let (bytes, room2) = c.freeze();
        room2.release();
        assert_eq!(budget.permits.available_permits(), 4, "taken over by the cache");
        drop((bytes, room));
    }
}
