//! Each project's events kept in memory as integer columns: the embedded store's engine for
//! insight scans.
//!
//! Why: reading 10M events out of DuckDB for every question (Arrow conversion of texts and
//! lists, then interning each event's group keys) cost about a second; here events are decoded
//! once — names, distinct ids and group keys as dense ids — and a question copies the integers
//! it needs. About 20 bytes per event (time, name, distinct id, the event's place in its name's
//! list) plus 4 per group type in use. Event properties are not kept (they would multiply the
//! memory): questions that read them scan DuckDB as before.
//!
//! Persons are resolved at question time through `person_of`, which the writer keeps current as
//! identities merge, so the cache answers like the SQL scan's join on `person_distinct_ids`.
//!
//! Consistency: a project is loaded on its first question while holding [`EventCache::gate`],
//! which the writer holds from the start of a transaction until its changes are appended here.
//! A load therefore sees each committed batch once: in the database or as an append.
//!
//! Restarts: with a data directory, each project's columns are saved to a snapshot file
//! ([`snapshot`]) after a load from the database, when a quarter more events have been appended
//! since the last save, and at shutdown; a load starts from the snapshot and reads only the
//! events after it from the database.

mod snapshot;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rustc_hash::FxHashMap as HashMap;
use troupe_core::{ProjectId, StoredEvent};
use troupe_store::{Dictionary, EventScan, GroupColumnBuilder, ScanRequest};

/// "No id" in a column of ids.
const NONE: u32 = u32::MAX;
/// An untyped key that names no group of the type (see [`GroupColumnBuilder::untyped_id`]).
const NOT_A_GROUP: u32 = u32::MAX - 1;

pub use snapshot::{SnapshotError, SnapshotStamp};

/// Events appended since the last save after which the columns are saved again, at least: a
/// restart after `kill -9` reads at most about this many (or a quarter of the project, when
/// more) from the database. Saving 10M events' columns writes ~250 MB.
const SAVE_AFTER_EVENTS: usize = 1_000_000;

/// The loaded projects' columns, shared by the writer (appends) and the readers (scans).
#[derive(Default)]
pub struct EventCache {
    gate: Mutex<()>,
    projects: RwLock<HashMap<ProjectId, Arc<RwLock<ProjectColumns>>>>,
    /// See [`crate::EmbeddedConfig::release_freed_memory`].
    release_freed_memory: Option<fn()>,
    /// The directory of the snapshot files; `None` (a store in memory): no snapshots.
    snapshots: Option<PathBuf>,
    /// Held while a snapshot is written: one at a time, and shutdown waits for a save under way.
    saving: Mutex<()>,
    /// Set while a background save is started or under way: commits do not start another.
    saving_in_background: AtomicBool,
}

impl EventCache {
    pub fn new(release_freed_memory: Option<fn()>, snapshots: Option<PathBuf>) -> Self {
        EventCache { release_freed_memory, snapshots, ..EventCache::default() }
    }

    /// The projects that have a snapshot file: their columns are loaded at start.
    pub fn snapshotted_projects(&self) -> Vec<ProjectId> {
        let Some(dir) = &self.snapshots else { return Vec::new() };
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        let mut projects: Vec<ProjectId> = entries
            .filter_map(|entry| {
                let name = entry.ok()?.file_name();
                name.to_str()?.strip_prefix("project-")?.strip_suffix(".columns")?.parse().ok()
            })
            .collect();
        projects.sort_unstable();
        projects
    }

    /// Where `project`'s snapshot is kept, when snapshots are.
    pub fn snapshot_path(&self, project: ProjectId) -> Option<PathBuf> {
        self.snapshots.as_ref().map(|dir| dir.join(format!("project-{project}.columns")))
    }

    /// The columns saved in `project`'s snapshot when it is of `generation`, without persons;
    /// `None` when there is none in step (the reason is logged).
    pub fn read_snapshot(&self, project: ProjectId, generation: u64) -> Option<ProjectColumns> {
        let path = self.snapshot_path(project)?;
        let started = std::time::Instant::now();
        match snapshot::read(&path, project, generation) {
            Ok((mut columns, stamp)) => {
                tracing::debug!(events = columns.ts.len(), ms = started.elapsed().as_secs_f64() * 1e3, "snapshot read");
                columns.stamp = stamp;
                columns.set_saved(columns.ts.len());
                Some(columns)
            }
            Err(SnapshotError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::info!(project, error = %e, "not using the columns' snapshot; reading the database");
                // Replaced by a good one after the load; until then it would only be read again.
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Save `project`'s columns when at least `after` events are not in its snapshot (or there is
    /// none). The columns are read-locked while written (appends wait), not while synced.
    pub fn save(&self, project: ProjectId, after: usize) {
        let (Some(path), Some(columns)) = (self.snapshot_path(project), self.get(project)) else { return };
        let _saving = self.saving.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let started = std::time::Instant::now();
        let written = {
            let columns = read(&columns);
            if !columns.unsaved(after) {
                return;
            }
            snapshot::write(&path, &columns, columns.stamp).map(|partial| (partial, columns.ts.len()))
        };
        // Synced before the map's lock is taken (a commit that changes stored events waits for
        // that lock); then not put in place when the columns were dropped meanwhile (their
        // events were rewritten, maybe erased): see `stored_events_changed`.
        let result = written.and_then(|(partial, events)| {
            partial.sync()?;
            let projects = read(&self.projects);
            match projects.get(&project) {
                Some(current) if Arc::ptr_eq(current, &columns) => partial.commit().map(|()| events),
                _ => partial.discard().map(|()| 0),
            }
        });
        match result {
            Ok(events) => {
                read(&columns).set_saved(events);
                tracing::debug!(project, events, ms = started.elapsed().as_secs_f64() * 1e3, "columns saved");
            }
            Err(e) => tracing::warn!(project, error = %e, path = %path.display(), "saving the columns failed"),
        }
    }

    /// Save every loaded project's columns not fully in their snapshot (at shutdown).
    pub fn save_all(&self) {
        let projects: Vec<ProjectId> = read(&self.projects).keys().copied().collect();
        for project in projects {
            self.save(project, 1);
        }
    }

    /// Save `project`'s columns on a thread of its own when a quarter more events (at least
    /// [`SAVE_AFTER_EVENTS`]) came since the last save, or when it has none.
    pub fn save_in_background_when_due(self: &Arc<Self>, project: ProjectId) {
        // Called after every commit: a store without snapshots stops here.
        if self.snapshots.is_none() {
            return;
        }
        let Some(columns) = self.get(project) else { return };
        let after = {
            let columns = read(&columns);
            let after = SAVE_AFTER_EVENTS.max(columns.ts.len() / 4);
            columns.unsaved(after).then_some(after)
        };
        let Some(after) = after else { return };
        if self.saving_in_background.swap(true, Ordering::AcqRel) {
            return;
        }
        let cache = Arc::clone(self);
        let spawned = std::thread::Builder::new().name("troupe-columns-save".into()).spawn(move || {
            cache.save(project, after);
            cache.saving_in_background.store(false, Ordering::Release);
        });
        if let Err(e) = spawned {
            self.saving_in_background.store(false, Ordering::Release);
            tracing::warn!(error = %e, "cannot start a thread to save the columns");
        }
    }

    /// Held by the writer from the start of a transaction until its changes are appended.
    pub fn gate(&self) -> MutexGuard<'_, ()> {
        self.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, project: ProjectId) -> Option<Arc<RwLock<ProjectColumns>>> {
        read(&self.projects).get(&project).cloned()
    }

    /// Drop a project's columns (they may not match the database): the next scan loads them.
    pub fn forget(&self, project: ProjectId) {
        write(&self.projects).remove(&project);
    }

    /// A commit changed `project`'s stored events: its snapshot file is deleted (it may hold
    /// what was erased, and it is out of step), and with `forget` its columns are dropped too.
    /// Under the map's lock, which a save holds while it puts a file in place, so no save of the
    /// columns before the change lands after it.
    pub fn stored_events_changed(&self, project: ProjectId, forget: bool) {
        let mut projects = write(&self.projects);
        if forget {
            projects.remove(&project);
        }
        if let Some(path) = self.snapshot_path(project) {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::error!(project, error = %e, path = %path.display(), "cannot delete the columns' snapshot")
                }
            }
        }
    }

    /// The project's columns, loaded by `load` (from the database) the first time.
    pub fn get_or_load<E>(
        self: &Arc<Self>,
        project: ProjectId,
        load: impl FnOnce() -> Result<ProjectColumns, E>,
    ) -> Result<Arc<RwLock<ProjectColumns>>, E> {
        if let Some(columns) = self.get(project) {
            return Ok(columns);
        }
        let _gate = self.gate();
        if let Some(columns) = self.get(project) {
            return Ok(columns);
        }
        let started = std::time::Instant::now();
        let mut columns = load()?;
        tracing::debug!(events = columns.ts.len(), ms = started.elapsed().as_secs_f64() * 1e3, "columns read");
        columns.finish_load();
        if let Some(release) = self.release_freed_memory {
            release();
        }
        tracing::debug!(ms = started.elapsed().as_secs_f64() * 1e3, "columns loaded");
        let columns = Arc::new(RwLock::new(columns));
        write(&self.projects).insert(project, Arc::clone(&columns));
        self.save_in_background_when_due(project);
        Ok(columns)
    }
}

pub fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One project's events: in time order after a load ([`Self::sort_by_time`]), then in the order
/// the writer appended them.
#[derive(Default)]
pub struct ProjectColumns {
    /// Microseconds since the epoch, UTC.
    ts: Vec<i64>,
    name: Vec<u32>,
    names: Dictionary,
    /// Per name, its events in increasing order: a question about a few names visits only
    /// their events (4 bytes per event). Built at the end of a load, at its exact size.
    by_name: Vec<Vec<u32>>,
    /// Between [`Self::reserve`] and [`Self::finish_load`]: the events expected (each group
    /// type's ids are reserved at that size), and `by_name` is left for the end.
    loading: Option<usize>,
    /// Whether `ts` is in time order (sorted at load; an append older than the last event
    /// clears it), so that a time range is found by binary search.
    out_of_order: bool,
    distinct: Vec<u32>,
    distinct_ids: Dictionary,
    /// Per distinct id, the person it resolves to now (into `persons`), or [`NONE`].
    person_of: Vec<u32>,
    persons: Dictionary,
    /// Per group type slot, the keys stamped on each event.
    slots: Vec<Ids>,
    untyped: Ids,
    /// The project, its rewrite generation when read and the sequence number of its last event:
    /// what a snapshot of these columns is in step with.
    stamp: SnapshotStamp,
    /// One more than the events (from the first) in the project's snapshot file; 0: none saved.
    /// Atomic: the saving thread sets it holding a read lock.
    saved_events_plus_one: AtomicUsize,
}

/// Keys of one kind on each event: the first in `first` (shorter than the event count when the
/// last events have none; [`NONE`]: none), any further ones as `(event, id)` pairs in event order.
/// Most events have at most one key per type, so this costs 4 bytes per event, not a list.
#[derive(Default)]
struct Ids {
    keys: Dictionary,
    first: Vec<u32>,
    more: Vec<(u32, u32)>,
}

impl Ids {
    /// The keys of `event`, the last event pushed so far.
    fn push<'k>(&mut self, event: usize, keys: impl IntoIterator<Item = &'k str>) {
        let mut keys = keys.into_iter();
        let Some(first) = keys.next() else { return };
        let first = self.keys.intern_str(first);
        self.first.resize(event, NONE);
        self.first.push(first);
        for key in keys {
            let id = self.keys.intern_str(key);
            self.more.push((event as u32, id));
        }
    }

    fn shrink_to_fit(&mut self) {
        self.first.shrink_to_fit();
        self.more.shrink_to_fit();
    }
}

/// Reads an [`Ids`] event by event, in increasing event order.
struct IdsReader<'a> {
    ids: &'a Ids,
    cursor: usize,
}

impl<'a> IdsReader<'a> {
    fn new(ids: &'a Ids) -> Self {
        IdsReader { ids, cursor: 0 }
    }

    /// Moves the cursor past the further keys of events before `event`.
    fn skip_before(&mut self, event: usize) {
        let more = &self.ids.more;
        while self.cursor < more.len() && (more[self.cursor].0 as usize) < event {
            self.cursor += 1;
        }
    }

    /// The one id of `event` ([`NONE`]: none), or `None` when it has several.
    fn single(&mut self, event: usize) -> Option<u32> {
        let first = match self.ids.first.get(event) {
            Some(&id) if id != NONE => id,
            _ => return Some(NONE),
        };
        self.skip_before(event);
        match self.ids.more.get(self.cursor) {
            Some(&(e, _)) if e as usize == event => None,
            _ => Some(first),
        }
    }

    /// The ids of `event` into `out` (cleared first).
    fn at(&mut self, event: usize, out: &mut Vec<u32>) {
        out.clear();
        match self.ids.first.get(event) {
            Some(&id) if id != NONE => out.push(id),
            _ => return,
        }
        self.skip_before(event);
        let more = &self.ids.more;
        while self.cursor < more.len() && more[self.cursor].0 as usize == event {
            out.push(more[self.cursor].1);
            self.cursor += 1;
        }
    }
}

impl ProjectColumns {
    /// Whether at least `after` events are not in the snapshot file, or there is none (and
    /// there are events).
    fn unsaved(&self, after: usize) -> bool {
        match self.saved_events_plus_one.load(Ordering::Acquire) {
            0 => !self.ts.is_empty(),
            saved => self.ts.len().saturating_sub(saved - 1) >= after.max(1),
        }
    }

    /// The first `events` events are in the snapshot file.
    fn set_saved(&self, events: usize) {
        self.saved_events_plus_one.fetch_max(events + 1, Ordering::AcqRel);
    }

    /// What these columns were read at: a snapshot of them is in step with it.
    pub fn set_stamp(&mut self, stamp: SnapshotStamp) {
        self.stamp = stamp;
    }

    pub fn stamp(&self) -> SnapshotStamp {
        self.stamp
    }

    /// The sequence number of an event appended since (events are numbered in commit order).
    pub fn saw_seq(&mut self, seq: u64) {
        self.stamp.last_seq = self.stamp.last_seq.max(seq);
    }

    /// An event's time, name and distinct id; its keys follow through [`Self::push_untyped`]
    /// and [`Self::push_slot`] with the index returned.
    pub fn push_event(&mut self, ts: i64, name: &str, distinct_id: &str) -> usize {
        let event = self.ts.len();
        self.out_of_order |= self.ts.last().is_some_and(|&last| ts < last);
        self.ts.push(ts);
        let name = self.names.intern_str(name);
        self.name.push(name);
        if self.loading.is_none() {
            if self.by_name.len() <= name as usize {
                self.by_name.resize_with(name as usize + 1, Vec::new);
            }
            self.by_name[name as usize].push(event as u32);
        }
        let distinct = self.distinct_id(distinct_id);
        self.distinct.push(distinct);
        event
    }

    /// The untyped group keys of the event just pushed.
    pub fn push_untyped<'k>(&mut self, event: usize, keys: impl IntoIterator<Item = &'k str>) {
        self.untyped.push(event, keys);
    }

    /// The keys stamped for a group type slot on the event just pushed.
    pub fn push_slot<'k>(&mut self, event: usize, slot: usize, keys: impl IntoIterator<Item = &'k str>) {
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, Ids::default);
        }
        let ids = &mut self.slots[slot];
        if let (Some(events), 0) = (self.loading, ids.first.capacity()) {
            ids.first.reserve_exact(events);
        }
        ids.push(event, keys);
    }

    /// An event the writer committed.
    pub fn push_stored(&mut self, e: &StoredEvent) {
        let event = self.push_event(e.timestamp.timestamp_micros(), &e.event, &e.distinct_id);
        self.push_untyped(event, e.untyped_groups.iter().map(String::as_str));
        for (&slot, keys) in &e.groups {
            self.push_slot(event, slot as usize, keys.iter().map(String::as_str));
        }
    }

    /// The person a distinct id resolves to now (`None`: none, e.g. deleted).
    pub fn set_person(&mut self, distinct_id: &str, person: Option<&str>) {
        let d = self.distinct_id(distinct_id) as usize;
        self.person_of[d] = person.map_or(NONE, |p| self.persons.intern_str(p));
    }

    /// A group type was deleted: its slot's keys are gone from stored events.
    pub fn clear_slot(&mut self, slot: usize) {
        if let Some(ids) = self.slots.get_mut(slot) {
            *ids = Ids::default();
        }
    }

    /// A commit changed stored events in place (these columns followed it): it moved the
    /// project's rewrite generation on by one and deleted the snapshot.
    pub fn stored_events_changed(&mut self) {
        self.stamp.generation += 1;
        self.saved_events_plus_one.store(0, Ordering::Release);
    }

    fn distinct_id(&mut self, key: &str) -> u32 {
        let d = self.distinct_ids.intern_str(key);
        if self.person_of.len() <= d as usize {
            self.person_of.resize(d as usize + 1, NONE);
        }
        d
    }

    /// The end of a load: the events in time order, the lists by name built, spare room freed.
    pub fn finish_load(&mut self) {
        self.loading = None;
        self.sort_by_time();
        self.index_names();
        self.shrink_to_fit();
    }

    /// Put the events in time order (at load; appends arrive mostly in order). The query layer
    /// walks each actor's events in time order, and sorting streams that are already sorted is
    /// a check instead of a sort.
    ///
    /// Memory: beside the columns, only the permutation and one scratch column, which each
    /// permuted column hands on to the next (freeing a copy per column left the allocator
    /// holding them all: +340 MB at 10M events).
    fn sort_by_time(&mut self) {
        if !self.out_of_order {
            return;
        }
        self.out_of_order = false;
        let mut order: Vec<u32> = (0..self.ts.len() as u32).collect();
        // Unstable but keyed on (time, index): the same order as a stable sort, without its
        // scratch buffer.
        order.sort_unstable_by_key(|&i| (self.ts[i as usize], i));
        // The times in that order are the times sorted.
        self.ts.sort_unstable();
        let mut scratch: Vec<u32> = Vec::with_capacity(order.len());
        let mut permute = |column: &mut Vec<u32>| {
            scratch.clear();
            scratch.extend(order.iter().map(|&old| column.get(old as usize).copied().unwrap_or(NONE)));
            std::mem::swap(column, &mut scratch);
        };
        permute(&mut self.name);
        permute(&mut self.distinct);
        for ids in self.slots.iter_mut().chain([&mut self.untyped]) {
            if ids.first.is_empty() {
                continue;
            }
            // Shorter than the events when the last ones have no key: those read as none.
            permute(&mut ids.first);
            while ids.first.last() == Some(&NONE) {
                ids.first.pop();
            }
        }
        drop(scratch);
        let mut new_index: Option<Vec<u32>> = None;
        for ids in self.slots.iter_mut().chain([&mut self.untyped]) {
            if ids.more.is_empty() {
                continue;
            }
            let new_index = new_index.get_or_insert_with(|| {
                let mut new_index = vec![0u32; order.len()];
                for (new, &old) in order.iter().enumerate() {
                    new_index[old as usize] = new as u32;
                }
                new_index
            });
            for (event, _) in &mut ids.more {
                *event = new_index[*event as usize];
            }
            // Stable: an event's further keys keep their order.
            ids.more.sort_by_key(|&(event, _)| event);
        }
    }

    /// `by_name` from `name`, each list at its exact size.
    fn index_names(&mut self) {
        let mut counts = vec![0usize; self.names.keys.len()];
        for &name in &self.name {
            counts[name as usize] += 1;
        }
        self.by_name = counts.into_iter().map(Vec::with_capacity).collect();
        for (event, &name) in self.name.iter().enumerate() {
            self.by_name[name as usize].push(event as u32);
        }
    }

    fn shrink_to_fit(&mut self) {
        self.ts.shrink_to_fit();
        self.name.shrink_to_fit();
        self.distinct.shrink_to_fit();
        self.person_of.shrink_to_fit();
        self.untyped.shrink_to_fit();
        self.slots.iter_mut().for_each(Ids::shrink_to_fit);
    }

    /// The events a request selects (its event properties are not here: the caller reads them
    /// from the database). Each builder is the column of a requested group type, its `slot` set
    /// when the type exists. Returns the scan without persons' details and the persons' keys.
    pub fn scan(&self, req: &ScanRequest, builders: &mut [GroupColumnBuilder]) -> (EventScan, Vec<String>) {
        let from = req.from.map_or(i64::MIN, |t| t.timestamp_micros());
        let to = req.to.map_or(i64::MAX, |t| t.timestamp_micros());
        // In time order the range is a slice; otherwise every event is checked.
        let range = if self.out_of_order {
            0..self.ts.len()
        } else {
            self.ts.partition_point(|&t| t < from)..self.ts.partition_point(|&t| t < to)
        };
        let mut out = EventScan { names: self.names.keys.clone(), ..EventScan::default() };
        // At most every event of the range, taken once: untouched capacity costs address space,
        // not memory, where growing by doubling would copy and leave old buffers behind.
        out.ts.reserve_exact(range.len());
        out.name.reserve_exact(range.len());
        if req.persons {
            out.person.reserve_exact(range.len());
        }
        for builder in builders.iter_mut() {
            builder.reserve(range.len());
        }
        // The events taken, in ascending order: a slice of the range, or a few names' events.
        let selected: Selected = match &req.events {
            None if !self.out_of_order => Selected::Range(range),
            None => Selected::List(range.filter(|&e| (from..to).contains(&self.ts[e])).map(|e| e as u32).collect()),
            Some(events) => {
                let lists: Vec<&[u32]> = self
                    .names
                    .keys
                    .iter()
                    .zip(&self.by_name)
                    .filter(|(name, _)| events.contains(name))
                    .map(|(_, list)| {
                        let start = list.partition_point(|&e| (e as usize) < range.start);
                        let end = list.partition_point(|&e| (e as usize) < range.end);
                        &list[start..end]
                    })
                    .collect();
                let mut list = Vec::with_capacity(lists.iter().map(|l| l.len()).sum());
                // In time order the lists are already cut to the range: no time to read here.
                union_ascending(&lists, range, |e| {
                    if !self.out_of_order || (from..to).contains(&self.ts[e]) {
                        list.push(e as u32);
                    }
                });
                Selected::List(list)
            }
        };
        // Column by column, each a copy or a gather the compiler keeps tight, the columns on
        // every core at once.
        let (ts, name, person) = (&mut out.ts, &mut out.name, &mut out.person);
        let mut persons: Vec<String> = Vec::new();
        let selected = &selected;
        rayon::scope(|scope| {
            scope.spawn(|_| selected.gather(&self.ts, ts));
            scope.spawn(|_| selected.gather(&self.name, name));
            if req.persons {
                scope.spawn(|_| self.persons_column(selected, person, &mut persons));
            }
            for builder in builders.iter_mut() {
                scope.spawn(move |_| self.group_column(selected, builder));
            }
        });
        (out, persons)
    }

    /// Each selected event's person into `column`, numbered in the order first seen; their keys
    /// into `keys`. A distinct id's person is one of the columns' persons or, without one, the
    /// distinct id itself: both are numbered in one table (persons, then distinct ids), so no
    /// key is hashed.
    fn persons_column(&self, selected: &Selected, column: &mut Vec<u32>, keys: &mut Vec<String>) {
        let own = self.persons.keys.len();
        let mut number = vec![NONE; own + self.distinct_ids.keys.len()];
        let mut person_ids = vec![NONE; self.distinct_ids.keys.len()];
        selected.for_each(|i| {
            let d = self.distinct[i] as usize;
            if person_ids[d] == NONE {
                let (slot, key) = match self.person_of[d] {
                    NONE => (own + d, &self.distinct_ids.keys[d]),
                    p => (p as usize, &self.persons.keys[p as usize]),
                };
                if number[slot] == NONE {
                    number[slot] = keys.len() as u32;
                    keys.push(key.clone());
                }
                person_ids[d] = number[slot];
            }
            column.push(person_ids[d]);
        });
    }

    /// One requested group type's ids on the selected events into its builder.
    fn group_column(&self, selected: &Selected, builder: &mut GroupColumnBuilder) {
        let typed = builder.slot.and_then(|s| self.slots.get(s as usize));
        let (first, last) = match selected {
            Selected::Range(r) => (r.start, r.end),
            Selected::List(list) => {
                (list.first().map_or(0, |&e| e as usize), list.last().map_or(0, |&e| e as usize + 1))
            }
        };
        // Most scans: no event with a second key of the type, none with an untyped key. Then a
        // key's id is mapped once and each event is one lookup.
        let several = |ids: &Ids| {
            let more = ids.more.partition_point(|&(e, _)| (e as usize) < first);
            ids.more.get(more).is_some_and(|&(e, _)| (e as usize) < last)
        };
        let untyped = self.untyped.first.get(first..last.min(self.untyped.first.len())).unwrap_or(&[]);
        let simple = builder.slot.is_some()
            && typed.is_none_or(|ids| !several(ids))
            && !several(&self.untyped)
            && untyped.iter().all(|&k| k == NONE);
        if !simple {
            let mut reader = GroupReader::new(self, builder.slot);
            selected.for_each(|i| reader.push(i, builder));
            return;
        }
        let Some(ids) = typed else {
            selected.for_each(|_| builder.push_one(None));
            return;
        };
        let mut mapped = vec![NONE; ids.keys.keys.len()];
        let mut push = |k: u32| {
            if k == NONE {
                builder.push_one(None);
                return;
            }
            let id = &mut mapped[k as usize];
            if *id == NONE {
                *id = builder.typed_id(&ids.keys.keys[k as usize]);
            }
            builder.push_one(Some(*id));
        };
        match selected {
            Selected::Range(r) => {
                let stamped = r.start.min(ids.first.len())..r.end.min(ids.first.len());
                ids.first[stamped.clone()].iter().for_each(|&k| push(k));
                (stamped.len()..r.len()).for_each(|_| push(NONE));
            }
            Selected::List(list) => list.iter().for_each(|&e| push(ids.first.get(e as usize).copied().unwrap_or(NONE))),
        }
    }

    /// The start of a load of `events` more events: room taken once (growing by doubling would
    /// overshoot a large project's columns by up to half again, and copy them as they grow).
    pub fn reserve(&mut self, events: usize) {
        self.loading = Some(self.ts.len() + events);
        self.ts.reserve_exact(events);
        self.name.reserve_exact(events);
        self.distinct.reserve_exact(events);
    }
}

/// The events a scan takes, ascending.
enum Selected {
    Range(std::ops::Range<usize>),
    List(Vec<u32>),
}

impl Selected {
    /// The selected events' values of `column` onto `out`: a copy of a slice, or a gather.
    fn gather<T: Copy>(&self, column: &[T], out: &mut Vec<T>) {
        match self {
            Selected::Range(r) => out.extend_from_slice(&column[r.clone()]),
            Selected::List(list) => out.extend(list.iter().map(|&e| column[e as usize])),
        }
    }

    fn for_each(&self, mut visit: impl FnMut(usize)) {
        match self {
            Selected::Range(r) => r.clone().for_each(visit),
            Selected::List(list) => list.iter().for_each(|&e| visit(e as usize)),
        }
    }
}

/// Every element of some ascending lists of events within `range`, in ascending order (the
/// lists are a few names' events). Marking them in a bitmap of the range and reading it back
/// beats a k-way merge: no comparison per element, and the bitmap is 1/32 of the range's size.
fn union_ascending(lists: &[&[u32]], range: std::ops::Range<usize>, mut visit: impl FnMut(usize)) {
    if let [list] = lists {
        list.iter().for_each(|&e| visit(e as usize));
        return;
    }
    let mut bits = vec![0u64; range.len().div_ceil(64)];
    for &e in lists.iter().copied().flatten() {
        let offset = e as usize - range.start;
        bits[offset / 64] |= 1 << (offset % 64);
    }
    for (w, mut word) in bits.into_iter().enumerate() {
        while word != 0 {
            visit(range.start + w * 64 + word.trailing_zeros() as usize);
            word &= word - 1;
        }
    }
}

/// One requested group type's ids, read event by event and mapped to the builder's ids once
/// per key.
struct GroupReader<'a> {
    typed: Option<IdsReader<'a>>,
    untyped: IdsReader<'a>,
    /// Per key of the slot / of the untyped keys, the builder's id ([`NONE`]: not mapped yet).
    typed_ids: Vec<u32>,
    untyped_ids: Vec<u32>,
    /// The current event's keys, then its builder ids (kept to avoid allocating per event).
    keys: Vec<u32>,
    found: Vec<u32>,
}

impl<'a> GroupReader<'a> {
    fn new(columns: &'a ProjectColumns, slot: Option<u8>) -> Self {
        let typed = slot.and_then(|s| columns.slots.get(s as usize)).map(IdsReader::new);
        GroupReader {
            typed_ids: vec![NONE; typed.as_ref().map_or(0, |r| r.ids.keys.keys.len())],
            untyped_ids: vec![NONE; columns.untyped.keys.keys.len()],
            typed,
            untyped: IdsReader::new(&columns.untyped),
            keys: Vec::new(),
            found: Vec::new(),
        }
    }

    fn push(&mut self, event: usize, builder: &mut GroupColumnBuilder) {
        if builder.slot.is_none() {
            builder.push_one(None);
            return;
        }
        // Most events: at most one key of the type and no untyped key.
        let typed = self.typed.as_mut().map_or(Some(NONE), |reader| reader.single(event));
        if let (Some(key), Some(NONE)) = (typed, self.untyped.single(event)) {
            let id = (key != NONE).then(|| self.typed_id(key, builder));
            builder.push_one(id);
            return;
        }
        self.found.clear();
        self.keys.clear();
        if let Some(reader) = &mut self.typed {
            reader.at(event, &mut self.keys);
        }
        for i in 0..self.keys.len() {
            let id = self.typed_id(self.keys[i], builder);
            self.found.push(id);
        }
        self.untyped.at(event, &mut self.keys);
        for &k in &self.keys {
            let id = &mut self.untyped_ids[k as usize];
            if *id == NONE {
                *id = builder.untyped_id(&self.untyped.ids.keys.keys[k as usize]).unwrap_or(NOT_A_GROUP);
            }
            if *id != NOT_A_GROUP {
                self.found.push(*id);
            }
        }
        builder.push_ids(self.found.iter().copied());
    }

    /// The builder's id of the slot's key `k`, mapped on first use.
    fn typed_id(&mut self, k: u32, builder: &mut GroupColumnBuilder) -> u32 {
        let id = &mut self.typed_ids[k as usize];
        if *id == NONE {
            if let Some(reader) = &self.typed {
                *id = builder.typed_id(&reader.ids.keys.keys[k as usize]);
            }
        }
        *id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    /// A scan takes the events of its range and names with their group ids, whether the
    /// columns are in time order (a slice) or not (an append older than the last event: each
    /// event checked), and whether events have one key of the type (the tight copy) or several.
    #[test]
    fn a_scan_takes_the_range_in_and_out_of_time_order() {
        let at = |s: i64| DateTime::from_timestamp(s, 0).expect("time");
        for (out_of_order, several) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut columns = ProjectColumns::default();
            let mut times: Vec<i64> = (0..20).collect();
            if out_of_order {
                times.swap(3, 15);
            }
            for &t in &times {
                let e =
                    columns.push_event(t * 1_000_000, if t % 2 == 0 { "even" } else { "odd" }, &format!("d{}", t % 3));
                let mut keys = vec![format!("c{}", t % 4)];
                if several && t == 12 {
                    keys.push("extra".into());
                }
                columns.push_slot(e, 0, keys.iter().map(String::as_str));
            }
            for events in [None, Some(vec!["even".to_string()])] {
                let req = ScanRequest {
                    from: Some(at(5)),
                    to: Some(at(14)),
                    events: events.clone(),
                    persons: true,
                    ..ScanRequest::default()
                };
                let mut builders = vec![GroupColumnBuilder::new("company", Some(0))];
                let (scan, persons) = columns.scan(&req, &mut builders);
                let column = builders.pop().expect("builder").finish();
                let mut got: Vec<(i64, String, String, Vec<String>)> = (0..scan.len())
                    .map(|i| {
                        let keys = column.of(i).iter().map(|&g| column.actors[g as usize].key.clone()).collect();
                        (
                            scan.ts[i] / 1_000_000,
                            scan.names[scan.name[i] as usize].clone(),
                            persons[scan.person[i] as usize].clone(),
                            keys,
                        )
                    })
                    .collect();
                got.sort();
                let want: Vec<(i64, String, String, Vec<String>)> = (5..14)
                    .filter(|t| events.is_none() || t % 2 == 0)
                    .map(|t| {
                        let mut keys = vec![format!("c{}", t % 4)];
                        if several && t == 12 {
                            keys.push("extra".into());
                        }
                        (t, if t % 2 == 0 { "even" } else { "odd" }.to_string(), format!("d{}", t % 3), keys)
                    })
                    .collect();
                assert_eq!(got, want, "out of order {out_of_order}, several {several}, events {events:?}");
            }
        }
    }

    #[test]
    fn a_union_of_event_lists_comes_out_ascending_and_once_each() {
        let (a, b, c): (&[u32], &[u32], &[u32]) = (&[100, 163, 164, 300], &[101, 163, 250], &[]);
        let mut seen = Vec::new();
        union_ascending(&[a, b, c], 100..301, |e| seen.push(e));
        assert_eq!(seen, [100, 101, 163, 164, 250, 300]);
        seen.clear();
        union_ascending(&[b], 100..301, |e| seen.push(e));
        assert_eq!(seen, [101, 163, 250]);
    }
}
