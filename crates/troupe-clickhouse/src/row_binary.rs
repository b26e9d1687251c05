//! Reading ClickHouse's `RowBinary` output: each row's columns one after another, little-endian
//! numbers, strings and arrays prefixed by their length as an unsigned LEB128 varint. Used for
//! results made of many numbers (funnel streams), where JSON costs more to write and read than
//! the query itself.

use crate::ClickHouseError;

/// A cursor over a `RowBinary` body; every read checks the body holds what it takes.
pub struct RowBinary<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> RowBinary<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        RowBinary { bytes, at: 0 }
    }

    /// Whether every row was read.
    pub fn is_done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ClickHouseError> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.bytes.len()).ok_or_else(|| {
            ClickHouseError::Decode(format!("a RowBinary reply ends inside a value (at byte {})", self.at))
        })?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ClickHouseError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A length: an unsigned LEB128 varint, at most 10 bytes.
    fn length(&mut self) -> Result<usize, ClickHouseError> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return usize::try_from(value)
                    .map_err(|_| ClickHouseError::Decode(format!("a RowBinary length {value} is out of range")));
            }
        }
        Err(ClickHouseError::Decode("a RowBinary length runs past 10 bytes".into()))
    }

    pub fn string(&mut self) -> Result<String, ClickHouseError> {
        let n = self.length()?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| ClickHouseError::Decode(format!("a RowBinary string: {e}")))
    }

    pub fn i64(&mut self) -> Result<i64, ClickHouseError> {
        Ok(i64::from_le_bytes(self.fixed()?))
    }

    pub fn u32(&mut self) -> Result<u32, ClickHouseError> {
        Ok(u32::from_le_bytes(self.fixed()?))
    }

    /// An array, each element read by `element`.
    pub fn array<T>(
        &mut self,
        mut element: impl FnMut(&mut Self) -> Result<T, ClickHouseError>,
    ) -> Result<Vec<T>, ClickHouseError> {
        let n = self.length()?;
        // A length is only trusted as far as the body could hold it (an element is 1+ bytes).
        let mut out = Vec::with_capacity(n.min(self.bytes.len() - self.at));
        for _ in 0..n {
            out.push(element(self)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_strings_numbers_and_nested_arrays() {
        let mut body = vec![3, b'a', b'c', b'e'];
        body.extend(2u64.to_le_bytes()[..1].iter()); // two elements
        body.extend((-5i64).to_le_bytes());
        body.extend(1_788_284_830_000_000i64.to_le_bytes());
        body.extend([1, 1, 1, b'k']); // [["k"]]
        body.extend(7u32.to_le_bytes());
        let mut r = RowBinary::new(&body);
        assert_eq!(r.string().expect("string"), "ace");
        assert_eq!(r.array(RowBinary::i64).expect("times"), vec![-5, 1_788_284_830_000_000]);
        assert_eq!(r.array(|r| r.array(RowBinary::string)).expect("keys"), vec![vec!["k".to_string()]]);
        assert_eq!(r.u32().expect("u32"), 7);
        assert!(r.is_done());
    }

    #[test]
    fn a_long_length_and_a_cut_body_are_errors_not_panics() {
        // 300 as LEB128: 0xac 0x02.
        let mut r = RowBinary::new(&[0xac, 0x02, b'x']);
        assert!(r.string().is_err());
        let mut r = RowBinary::new(&[0xff; 12]);
        assert!(r.string().is_err());
        let mut r = RowBinary::new(&[1, 2]);
        assert!(r.i64().is_err());
        let mut r = RowBinary::new(&[2, 0xff, 0xfe]);
        assert!(r.string().is_err(), "not UTF-8");
    }
}
