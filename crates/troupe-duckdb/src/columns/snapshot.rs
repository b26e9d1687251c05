//! A project's columns saved in a file beside the database, so that the first question after a
//! restart reads them back (a copy from the page cache) instead of decoding every event out of
//! DuckDB again (about 0.7 s per million events).
//!
//! The file is a cache of the database, never a source of truth. It is used only when it is in
//! step: it records the project's rewrite generation (bumped, in the same transaction, by every
//! write that changes stored events: erasures, anonymizations, retention, deleted group types)
//! and the sequence number of the last event it holds. A load takes it when the generation is
//! the database's, then reads from DuckDB only the events numbered after it. A file that is
//! torn, corrupt, of another format version or of another byte order is ignored (the load reads
//! everything from DuckDB, and a good file is written again).
//!
//! Layout: a header, then every column and dictionary as arrays in the machine's byte order
//! (read straight into their vectors, on every core), each with its length before it and an
//! XXH3 checksum after it. A dictionary is two arrays: its keys' lengths, then their bytes.
//! Persons are not kept: who each distinct id is changes with every merge, so a load reads
//! `person_distinct_ids` whatever it starts from.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytemuck::Pod;
use rayon::prelude::*;
use troupe_store::Dictionary;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use super::{Ids, ProjectColumns, NONE};

/// The file format; the last byte is its version.
const MAGIC: &[u8; 8] = b"TRPCOLS\x01";
/// Written in the machine's byte order: read back as 0x0102_0304 only on one of the same order.
const BYTE_ORDER: u32 = 0x0102_0304;
/// Magic, byte order, then project, generation, last sequence number, out-of-order flag and the
/// header's checksum as u64s.
const HEADER_BYTES: usize = 8 + 4 + 5 * 8;

/// Why a snapshot could not be read (the load then reads the database).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read the snapshot: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a snapshot of this format or byte order")]
    Format,
    #[error("the snapshot is of another project")]
    OtherProject,
    #[error("the snapshot is of generation {found}, the database is at {expected}")]
    Stale { found: u64, expected: u64 },
    #[error("the snapshot is cut short or malformed: {0}")]
    Malformed(&'static str),
    #[error("the snapshot's checksum does not match its contents")]
    Checksum,
}

/// What a snapshot holds besides the columns.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotStamp {
    pub project: u32,
    /// The project's rewrite generation when the columns were read.
    pub generation: u64,
    /// The highest event sequence number among the columns' events (0: none numbered).
    pub last_seq: u64,
}

/// Write `columns` beside `path`, to a temporary file that [`Partial::commit`] syncs and
/// renames into place: a crash leaves the old file or the new one, never a torn one under the
/// name. Split so that the caller holds the columns only while they are written, not synced.
pub fn write(path: &Path, columns: &ProjectColumns, stamp: SnapshotStamp) -> std::io::Result<Partial> {
    let partial = path.with_extension("partial");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&partial)?);
    let mut header = Vec::with_capacity(HEADER_BYTES);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&BYTE_ORDER.to_ne_bytes());
    for value in [u64::from(stamp.project), stamp.generation, stamp.last_seq, u64::from(columns.out_of_order)] {
        header.extend_from_slice(&value.to_ne_bytes());
    }
    header.extend_from_slice(&xxh3_64(&header).to_ne_bytes());
    out.write_all(&header)?;
    array(&mut out, &columns.ts)?;
    array(&mut out, &columns.name)?;
    dictionary(&mut out, &columns.names)?;
    array(&mut out, &columns.distinct)?;
    dictionary(&mut out, &columns.distinct_ids)?;
    array(&mut out, &[columns.slots.len() as u64])?;
    for ids in columns.slots.iter().chain([&columns.untyped]) {
        dictionary(&mut out, &ids.keys)?;
        array(&mut out, &ids.first)?;
        let (events, keys): (Vec<u32>, Vec<u32>) = ids.more.iter().copied().unzip();
        array(&mut out, &events)?;
        array(&mut out, &keys)?;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    Ok(Partial { file, partial, path: path.to_path_buf() })
}

/// One array: its length, its bytes, and the checksum of both.
fn array<T: Pod>(out: &mut impl Write, values: &[T]) -> std::io::Result<()> {
    let length = (values.len() as u64).to_ne_bytes();
    let bytes: &[u8] = bytemuck::cast_slice(values);
    let mut hash = Xxh3::new();
    hash.update(&length);
    hash.update(bytes);
    out.write_all(&length)?;
    out.write_all(bytes)?;
    out.write_all(&hash.digest().to_ne_bytes())
}

fn dictionary(out: &mut impl Write, dictionary: &Dictionary) -> std::io::Result<()> {
    let lengths: Vec<u32> = dictionary.keys.iter().map(|k| k.len() as u32).collect();
    array(out, &lengths)?;
    array(out, &dictionary.keys.concat().into_bytes())
}

/// A snapshot written but not yet in place.
pub struct Partial {
    file: File,
    partial: PathBuf,
    path: PathBuf,
}

impl Partial {
    /// Make its contents durable (the slow part of [`Self::commit`], which a caller may do first
    /// outside its locks; committing then finds nothing left to write).
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_all()
    }

    /// Sync it and put it in place of the previous one.
    pub fn commit(self) -> std::io::Result<()> {
        self.file.sync_all()?;
        drop(self.file);
        std::fs::rename(&self.partial, &self.path)?;
        if let Some(dir) = self.path.parent() {
            // The rename itself is durable once the directory is synced.
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    pub fn discard(self) -> std::io::Result<()> {
        drop(self.file);
        std::fs::remove_file(&self.partial)
    }
}

/// The columns in `path`, when it is a snapshot of `project` at `generation`; persons are left
/// unresolved (the caller reads them).
pub fn read(path: &Path, project: u32, generation: u64) -> Result<(ProjectColumns, SnapshotStamp), SnapshotError> {
    let file = File::open(path)?;
    let length = file.metadata()?.len();
    let mut header = [0u8; HEADER_BYTES];
    file.read_exact_at(&mut header, 0).map_err(|_| SnapshotError::Format)?;
    let (fields, checksum) = header.split_at(HEADER_BYTES - 8);
    if &fields[..8] != MAGIC || fields[8..12] != BYTE_ORDER.to_ne_bytes() {
        return Err(SnapshotError::Format);
    }
    if xxh3_64(fields).to_ne_bytes() != checksum {
        return Err(SnapshotError::Checksum);
    }
    let field = |i: usize| u64::from_ne_bytes(fields[12 + 8 * i..20 + 8 * i].try_into().unwrap_or_default());
    let (owner, found, last_seq, out_of_order) = (field(0), field(1), field(2), field(3));
    if owner != u64::from(project) {
        return Err(SnapshotError::OtherProject);
    }
    if found != generation {
        return Err(SnapshotError::Stale { found, expected: generation });
    }

    // Where each array is (a walk over their lengths), then every array read at once.
    let mut walk = Walk { file: &file, at: HEADER_BYTES as u64, length, arrays: Vec::new() };
    walk.array(8)?;
    walk.array(4)?;
    walk.dictionary()?;
    walk.array(4)?;
    walk.dictionary()?;
    let slots = walk.small_u64()?;
    if slots > 255 {
        return Err(SnapshotError::Malformed("more group type slots than there can be"));
    }
    for _ in 0..=slots {
        walk.dictionary()?;
        walk.array(4)?;
        walk.array(4)?;
        walk.array(4)?;
    }
    if walk.at != length {
        return Err(SnapshotError::Malformed("bytes after the last column"));
    }
    let arrays: Vec<Array> = walk.arrays.par_iter().map(|extent| extent.read(&file)).collect::<Result<_, _>>()?;
    let mut arrays = Arrays(arrays.into_iter());

    let mut columns = ProjectColumns { out_of_order: out_of_order != 0, ..ProjectColumns::default() };
    columns.ts = arrays.wide()?;
    columns.name = arrays.ids()?;
    columns.names = arrays.dictionary()?;
    columns.distinct = arrays.ids()?;
    columns.distinct_ids = arrays.dictionary()?;
    for slot in 0..=slots {
        let keys = arrays.dictionary()?;
        let first = arrays.ids()?;
        let events = arrays.ids()?;
        let more_keys = arrays.ids()?;
        if events.len() != more_keys.len() {
            return Err(SnapshotError::Malformed("further group keys without their events"));
        }
        let ids = Ids { keys, first, more: events.into_iter().zip(more_keys).collect() };
        if slot < slots {
            columns.slots.push(ids);
        } else {
            columns.untyped = ids;
        }
    }
    check(&columns)?;
    columns.person_of = vec![NONE; columns.distinct_ids.keys.len()];
    Ok((columns, SnapshotStamp { project, generation, last_seq }))
}

/// Where one array's elements are in the file.
struct Extent {
    /// Of its length prefix.
    offset: u64,
    elements: u64,
    /// Bytes per element: 8 (times), 4 (ids, lengths) or 1 (text).
    size: u64,
}

/// An array read, in the vector of its element type (so that it is handed over, not copied).
enum Array {
    Wide(Vec<i64>),
    Ids(Vec<u32>),
    Bytes(Vec<u8>),
}

impl Extent {
    /// The array (checksum checked), read straight into a vector of its element type.
    fn read(&self, file: &File) -> Result<Array, SnapshotError> {
        let elements = self.elements as usize;
        match self.size {
            8 => self.read_into(file, vec![0i64; elements]).map(Array::Wide),
            4 => self.read_into(file, vec![0u32; elements]).map(Array::Ids),
            _ => self.read_into(file, vec![0u8; elements]).map(Array::Bytes),
        }
    }

    fn read_into<T: Pod>(&self, file: &File, mut values: Vec<T>) -> Result<Vec<T>, SnapshotError> {
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut values);
        file.read_exact_at(bytes, self.offset + 8)?;
        let mut stored = [0u8; 8];
        file.read_exact_at(&mut stored, self.offset + 8 + bytes.len() as u64)?;
        let mut hash = Xxh3::new();
        hash.update(&self.elements.to_ne_bytes());
        hash.update(bytes);
        if hash.digest().to_ne_bytes() != stored {
            return Err(SnapshotError::Checksum);
        }
        Ok(values)
    }
}

/// The arrays read, taken in the order they were written.
struct Arrays(std::vec::IntoIter<Array>);

impl Arrays {
    fn next(&mut self) -> Result<Array, SnapshotError> {
        self.0.next().ok_or(SnapshotError::Malformed("a column missing"))
    }

    fn wide(&mut self) -> Result<Vec<i64>, SnapshotError> {
        match self.next()? {
            Array::Wide(values) => Ok(values),
            _ => Err(SnapshotError::Malformed("a column of another type")),
        }
    }

    fn ids(&mut self) -> Result<Vec<u32>, SnapshotError> {
        match self.next()? {
            Array::Ids(values) => Ok(values),
            _ => Err(SnapshotError::Malformed("a column of another type")),
        }
    }

    fn bytes(&mut self) -> Result<Vec<u8>, SnapshotError> {
        match self.next()? {
            Array::Bytes(values) => Ok(values),
            _ => Err(SnapshotError::Malformed("a column of another type")),
        }
    }

    fn dictionary(&mut self) -> Result<Dictionary, SnapshotError> {
        let lengths = self.ids()?;
        let text = self.bytes()?;
        if lengths.iter().map(|&l| l as usize).sum::<usize>() != text.len() {
            return Err(SnapshotError::Malformed("a dictionary's keys and their lengths disagree"));
        }
        let mut dictionary = Dictionary::default();
        dictionary.keys.reserve_exact(lengths.len());
        let mut at = 0;
        for length in lengths {
            let key = std::str::from_utf8(&text[at..at + length as usize])
                .map_err(|_| SnapshotError::Malformed("a key that is not UTF-8"))?;
            at += length as usize;
            if dictionary.intern_str(key) as usize != dictionary.keys.len() - 1 {
                return Err(SnapshotError::Malformed("a key twice in a dictionary"));
            }
        }
        Ok(dictionary)
    }
}

/// A walk over the arrays' length prefixes, noting where each is.
struct Walk<'f> {
    file: &'f File,
    at: u64,
    length: u64,
    arrays: Vec<Extent>,
}

impl Walk<'_> {
    fn array(&mut self, size: u64) -> Result<(), SnapshotError> {
        let mut prefix = [0u8; 8];
        if self.at + 8 > self.length {
            return Err(SnapshotError::Malformed("cut short"));
        }
        self.file.read_exact_at(&mut prefix, self.at)?;
        let elements = u64::from_ne_bytes(prefix);
        let end = elements.checked_mul(size).and_then(|bytes| bytes.checked_add(self.at + 16));
        match end {
            Some(end) if end <= self.length => {
                self.arrays.push(Extent { offset: self.at, elements, size });
                self.at = end;
                Ok(())
            }
            _ => Err(SnapshotError::Malformed("a length beyond the end of the file")),
        }
    }

    fn dictionary(&mut self) -> Result<(), SnapshotError> {
        self.array(4)?;
        self.array(1)
    }

    /// A one-element array of a number, read now (it says how many arrays follow).
    fn small_u64(&mut self) -> Result<u64, SnapshotError> {
        self.array(8)?;
        let extent = self.arrays.pop().ok_or(SnapshotError::Malformed("cut short"))?;
        match extent.read(self.file)? {
            Array::Wide(values) if values.len() == 1 => Ok(values[0] as u64),
            _ => Err(SnapshotError::Malformed("a count that is not one number")),
        }
    }
}

/// Every id within its dictionary and every column of the events' length, so that a file
/// whose checksums matched but which a bug wrote wrong cannot make a question index out of
/// bounds.
fn check(columns: &ProjectColumns) -> Result<(), SnapshotError> {
    let events = columns.ts.len();
    let within = |column: &[u32], keys: usize| column.par_iter().all(|&k| (k as usize) < keys || k == NONE);
    if columns.name.len() != events || columns.distinct.len() != events {
        return Err(SnapshotError::Malformed("columns of different lengths"));
    }
    if !within(&columns.name, columns.names.keys.len()) || !within(&columns.distinct, columns.distinct_ids.keys.len()) {
        return Err(SnapshotError::Malformed("an id outside its dictionary"));
    }
    for ids in columns.slots.iter().chain([&columns.untyped]) {
        let keys = ids.keys.keys.len();
        let ordered = ids.more.windows(2).all(|w| w[0].0 <= w[1].0);
        if ids.first.len() > events
            || !within(&ids.first, keys)
            || !ordered
            || ids.more.iter().any(|&(e, k)| e as usize >= ids.first.len() || k as usize >= keys)
        {
            return Err(SnapshotError::Malformed("group keys outside their events or dictionary"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> ProjectColumns {
        let mut columns = ProjectColumns::default();
        for i in 0..300i64 {
            let e =
                columns.push_event(i * 7 % 100, ["signup", "report", "pay"][i as usize % 3], &format!("d{}", i % 11));
            columns.push_slot(e, 1, [format!("c{}", i % 5).as_str()]);
            if i % 17 == 0 {
                columns.push_slot(e, 1, ["c1", "c2"]);
                columns.push_untyped(e, ["loose"]);
            }
        }
        columns.finish_load();
        columns
    }

    fn stamp() -> SnapshotStamp {
        SnapshotStamp { project: 3, generation: 2, last_seq: 41 }
    }

    fn saved(dir: &Path) -> PathBuf {
        let path = dir.join("project-3.columns");
        write(&path, &columns(), stamp()).and_then(Partial::commit).expect("written");
        path
    }

    /// What a scan reads of the columns, for comparing two of them.
    fn contents(c: &ProjectColumns) -> impl PartialEq + std::fmt::Debug {
        let ids = |ids: &Ids| (ids.keys.keys.clone(), ids.first.clone(), ids.more.clone());
        (
            (c.ts.clone(), c.name.clone(), c.names.keys.clone(), c.distinct.clone(), c.distinct_ids.keys.clone()),
            (c.slots.iter().map(ids).collect::<Vec<_>>(), ids(&c.untyped), c.out_of_order),
        )
    }

    #[test]
    fn a_snapshot_reads_back_as_written() {
        let dir = tempfile::tempdir().expect("dir");
        let path = saved(dir.path());
        let (read_back, got) = read(&path, 3, 2).expect("read");
        assert_eq!(got, stamp());
        assert_eq!(contents(&read_back), contents(&columns()));
        assert_eq!(read_back.person_of.len(), read_back.distinct_ids.keys.len());
        assert!(!path.with_extension("partial").exists(), "the temporary file is renamed");
    }

    #[test]
    fn a_snapshot_of_another_generation_or_project_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = saved(dir.path());
        assert!(matches!(read(&path, 3, 3), Err(SnapshotError::Stale { found: 2, expected: 3 })));
        assert!(matches!(read(&path, 4, 2), Err(SnapshotError::OtherProject)));
    }

    /// A file cut anywhere (a crash while it was copied elsewhere, a full disk) or with any byte
    /// changed is refused with an error, never read as columns and never a panic.
    #[test]
    fn a_torn_or_corrupt_snapshot_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = saved(dir.path());
        let whole = std::fs::read(&path).expect("bytes");
        let broken = dir.path().join("broken.columns");
        for cut in (0..whole.len()).step_by(7) {
            std::fs::write(&broken, &whole[..cut]).expect("write");
            assert!(read(&broken, 3, 2).is_err(), "cut at {cut} of {}", whole.len());
        }
        for at in (0..whole.len()).step_by(13) {
            let mut bytes = whole.clone();
            bytes[at] ^= 0x5a;
            std::fs::write(&broken, &bytes).expect("write");
            assert!(read(&broken, 3, 2).is_err(), "byte {at} changed");
        }
    }
}
