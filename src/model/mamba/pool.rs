//! Recycled SSM state buffers. A trace keeps every step's state (within its
//! budget), so decoding with capture needs a new buffer per layer and step:
//! 19.6 MB a step at the mamba2-130m shape. Fresh memory costs a page fault
//! per 4 KiB, which on the development VM took longer than the step's own
//! work on the state, so buffers a trace lets go of (thinned steps, or the
//! whole trace when it is dropped) come back here and capture takes them first.

use std::collections::VecDeque;
use std::sync::Mutex;

/// At most this much is kept for reuse (one trace's history budget); the
/// oldest buffers go first, so those of a model no longer run do not stay.
const CAP_BYTES: usize = 512 << 20;

struct Pool {
    bufs: VecDeque<Vec<f32>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool { bufs: VecDeque::new(), bytes: 0 });

/// A buffer of `len` floats with stale contents: recycled if one is free, else new (zeros).
pub fn take(len: usize) -> Vec<f32> {
    let found = POOL.lock().ok().and_then(|mut p| {
        let i = p.bufs.iter().rposition(|b| b.len() == len)?;
        let b = p.bufs.remove(i)?;
        p.bytes -= b.len() * 4;
        Some(b)
    });
    found.unwrap_or_else(|| vec![0.0; len])
}

/// Keep `buf` for a later `take`, dropping the oldest kept ones past the cap.
pub fn give(buf: Vec<f32>) {
    let size = buf.len() * 4;
    if size == 0 || size > CAP_BYTES {
        return;
    }
    if let Ok(mut p) = POOL.lock() {
        p.bytes += size;
        p.bufs.push_back(buf);
        while p.bytes > CAP_BYTES {
            let Some(old) = p.bufs.pop_front() else { break };
            p.bytes -= old.len() * 4;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_by_length() {
        // Lengths no other test uses (the pool is shared by the whole process).
        let a = vec![1.0f32; 1234];
        let ptr = a.as_ptr();
        give(a);
        assert_eq!(take(1235).len(), 1235);
        let b = take(1234);
        assert_eq!((b.as_ptr(), b.len()), (ptr, 1234));
        give(vec![0.0; CAP_BYTES / 4 + 1]); // too big to keep
        assert_eq!(take(CAP_BYTES / 4 + 1)[0], 0.0);
    }
}
