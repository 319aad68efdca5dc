//! The write-ahead log's promises: what an append returned is read back after reopening, a
//! torn append leaves exactly a prefix of the records and nothing of it reappears later,
//! damage before the last segment is refused, release keeps the numbering.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use super::*;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("warpnet-wal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        Self(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rec(i: u64, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
}

fn open(dir: &Dir) -> (Wal, Vec<WalRecord>) {
    Wal::open(&dir.0, WalOptions::default()).expect("open")
}

fn append(wal: &mut Wal, recs: &[Vec<u8>]) -> u64 {
    let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
    wal.append(&refs).expect("append")
}

fn seqs(records: &[WalRecord]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

/// The segment files, oldest first.
fn segment_files(dir: &Dir) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

fn only_segment(dir: &Dir) -> PathBuf {
    let mut files = segment_files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    files.remove(0)
}

/// A log of six one-record segments.
fn six_segments(dir: &Dir, opts: WalOptions) {
    let (mut wal, _) = Wal::open(&dir.0, opts).unwrap();
    for i in 1..=6 {
        append(&mut wal, &[rec(i, 100)]);
    }
}

#[test]
fn appended_records_are_read_back_in_order_after_reopening() {
    let dir = Dir::new("roundtrip");
    let (mut wal, records) = open(&dir);
    assert!(records.is_empty());
    assert_eq!(wal.next_seq(), 1);
    assert_eq!(append(&mut wal, &[rec(1, 10), rec(2, 0), rec(3, 5000)]), 3);
    assert_eq!(append(&mut wal, &[rec(4, 7)]), 4);
    assert_eq!(wal.append(&[]).unwrap(), 4, "an empty append writes nothing");
    drop(wal);

    let (wal, records) = open(&dir);
    assert_eq!(seqs(&records), vec![1, 2, 3, 4]);
    for r in &records {
        let len = [10, 0, 5000, 7][r.seq as usize - 1];
        assert_eq!(r.data, rec(r.seq, len));
    }
    assert_eq!(wal.next_seq(), 5);
    assert!(wal.cut().is_none());
}

/// Every point at which a crash can stop the last append: the records before that append
/// are all kept, the records kept form a prefix, and a record is kept only whole.
#[test]
fn a_torn_last_append_leaves_exactly_a_prefix_at_every_cut_point() {
    let dir = Dir::new("torn");
    let (mut wal, _) = open(&dir);
    append(&mut wal, &[rec(1, 40), rec(2, 3)]);
    let before = wal.pos;
    append(&mut wal, &[rec(3, 20), rec(4, 100), rec(5, 1)]);
    let after = wal.pos;
    drop(wal);
    let path = only_segment(&dir);
    let full = std::fs::read(&path).unwrap();
    // Record boundaries within the last append: 3 ends at before+16+20, 4 after 16+100 more.
    let ends = [before + 36, before + 36 + 116, after];
    for cut in before..=after {
        std::fs::write(&path, &full[..cut as usize]).unwrap();
        let (wal, records) = open(&dir);
        let whole = ends.iter().filter(|&&e| e <= cut).count() as u64;
        assert_eq!(seqs(&records), (1..=2 + whole).collect::<Vec<_>>(), "cut at {cut}");
        assert_eq!(records.last().unwrap().data, rec(2 + whole, [3, 20, 100, 1][whole as usize]));
        assert_eq!(wal.next_seq(), 3 + whole);
    }
}

#[test]
fn a_damaged_record_ends_the_log_and_records_after_it_never_reappear() {
    let dir = Dir::new("damaged");
    let (mut wal, _) = open(&dir);
    append(&mut wal, &[rec(1, 8)]);
    let second = wal.pos;
    // One append whose middle record a crash tore while the one after it reached the disk.
    append(&mut wal, &[rec(2, 8), rec(3, 8)]);
    drop(wal);
    let path = only_segment(&dir);
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&[0xff], second + 20).unwrap();
    drop(f);

    let (mut wal, records) = open(&dir);
    assert_eq!(seqs(&records), vec![1]);
    let cut = wal.cut().expect("a cut is reported").clone();
    assert_eq!((cut.offset, cut.reason), (second, "a record's checksum fails"));
    assert!(cut.damaged_bytes > 0);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), second, "the cut is on disk");

    // A new record of the same size lands where the torn one was: the intact old record 3
    // behind it must not come back as if it followed.
    append(&mut wal, &[rec(20, 8)]);
    drop(wal);
    let (wal, records) = open(&dir);
    assert_eq!(seqs(&records), vec![1, 2]);
    assert_eq!(records[1].data, rec(20, 8));
    assert!(wal.cut().is_none());
}

#[test]
fn segments_rotate_and_release_keeps_the_numbering() {
    let dir = Dir::new("rotate");
    let opts = WalOptions { segment_bytes: 300 };
    let (mut wal, _) = Wal::open(&dir.0, opts).unwrap();
    for i in 1..=20 {
        append(&mut wal, &[rec(i, 50)]);
    }
    assert!(wal.segments() >= 5, "{} segments", wal.segments());
    // A record bigger than a segment gets a segment of its own.
    append(&mut wal, &[rec(21, 1000)]);
    drop(wal);

    let (mut wal, records) = Wal::open(&dir.0, opts).unwrap();
    assert_eq!(seqs(&records), (1..=21).collect::<Vec<_>>());
    let segments = wal.segments();
    wal.release_before(10).unwrap();
    assert!(wal.segments() < segments);
    drop(wal);

    let (mut wal, records) = Wal::open(&dir.0, opts).unwrap();
    let first = records[0].seq;
    assert!(first > 1 && first <= 10, "first kept record {first}");
    assert_eq!(seqs(&records), (first..=21).collect::<Vec<_>>());
    // Releasing everything keeps the segment being written, so the numbering goes on.
    wal.release_before(u64::MAX).unwrap();
    assert_eq!(wal.segments(), 1);
    append(&mut wal, &[rec(22, 5)]);
    drop(wal);
    let (wal, records) = Wal::open(&dir.0, opts).unwrap();
    assert_eq!(wal.next_seq(), 23);
    assert_eq!(records.last().unwrap().seq, 22);
}

#[test]
fn damage_before_the_last_segment_is_refused_not_cut() {
    let dir = Dir::new("old-damage");
    let opts = WalOptions { segment_bytes: 200 };
    six_segments(&dir, opts);
    let files = segment_files(&dir);
    let f = OpenOptions::new().write(true).open(&files[0]).unwrap();
    f.write_all_at(&[0xaa], HEADER_BYTES + 30).unwrap();
    drop(f);
    let err = Wal::open(&dir.0, opts).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");

    // A missing segment in the middle is a gap, also refused.
    let dir = Dir::new("gap");
    six_segments(&dir, opts);
    let files = segment_files(&dir);
    std::fs::remove_file(&files[1]).unwrap();
    let err = Wal::open(&dir.0, opts).unwrap_err();
    assert!(err.to_string().contains("starts at record"), "{err}");
}

#[test]
fn a_newest_segment_whose_header_was_lost_is_reinitialised() {
    let dir = Dir::new("header");
    let opts = WalOptions { segment_bytes: 100 };
    let (mut wal, _) = Wal::open(&dir.0, opts).unwrap();
    append(&mut wal, &[rec(1, 90)]);
    append(&mut wal, &[rec(2, 90)]);
    drop(wal);
    let files = segment_files(&dir);
    // The crash hit right after the newest segment was created: its header is gone (but
    // then nothing was appended to it either, so drop record 2 with it).
    std::fs::write(files.last().unwrap(), b"").unwrap();
    let (mut wal, records) = Wal::open(&dir.0, opts).unwrap();
    assert_eq!(seqs(&records), vec![1]);
    append(&mut wal, &[rec(3, 10)]);
    drop(wal);
    let (_, records) = Wal::open(&dir.0, opts).unwrap();
    assert_eq!(seqs(&records), vec![1, 2]);
}

#[test]
fn a_failed_fsync_poisons_the_log_and_an_oversized_record_changes_nothing() {
    let dir = Dir::new("poison");
    let (mut wal, _) = open(&dir);
    append(&mut wal, &[rec(1, 4)]);
    let big = vec![0u8; MAX_RECORD_BYTES + 1];
    let err = wal.append(&[&big]).unwrap_err();
    assert!(matches!(err, StoreError::RecordTooLarge { .. }), "{err}");
    assert_eq!(wal.next_seq(), 2);

    wal.fail_sync_after(1);
    let err = wal.append(&[&rec(2, 4)]).unwrap_err();
    assert!(matches!(err, StoreError::SyncFailed { .. }), "{err}");
    let err = wal.append(&[&rec(3, 4)]).unwrap_err();
    assert!(matches!(err, StoreError::Poisoned { .. }), "{err}");
    assert_eq!(wal.next_seq(), 2);
}
