//! The engine's random numbers.

/// A xorshift64* generator: magic numbers, challenges, cookie key. Not for
/// secrets beyond a session's life.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A non-zero u32 (a magic number).
    pub fn magic(&mut self) -> u32 {
        loop {
            let m = (self.next_u64() >> 32) as u32;
            if m != 0 {
                return m;
            }
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 56) as u8).collect()
    }
}
