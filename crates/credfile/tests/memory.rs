//! The editor's memory, counted by the allocator: a read of the file and a
//! one-section update from that read (the daemon's pass: the snapshot it
//! read, the text it writes, the snapshot of what it wrote), on the shapes
//! that cost the most per byte (hundreds of thousands of tiny sections; a
//! million keys in one section). The README promises peak RSS <= 3x the
//! file + 20 MB for the whole process; the editor's share, asserted here on
//! the heap, is 3x the file + 8 MB, leaving 12 MB for the process's own
//! (its binary, stacks and runtime: `examples/bench`'s hostile and editor
//! tables measure the whole process). The first document model took 847
//! MB here for the 4 MB file, and 1 GB for the 15 MB one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use credfile::{CredentialsFile, Edit};

/// The editor's part of the promise's 20 MB.
const EDITOR_ALLOWANCE: usize = 8_000_000;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, counting sizes only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: the caller's layout, as given.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: allocated above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The peak of heap bytes above the start while `f` runs.
fn peak_during(f: impl FnOnce()) -> usize {
    let start = CURRENT.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed) - start
}

fn refresh(section: &str) -> Vec<Edit> {
    [
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "x_expires",
    ]
    .iter()
    .map(|key| Edit::set(section, *key, format!("new-{key}").into()))
    .collect()
}

fn check(name: &str, text: String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials");
    std::fs::write(&path, &text).unwrap();
    // Last written an hour ago, as when the daemon refreshes a profile: the
    // update can trust the snapshot without reading the file again.
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();
    let size = text.len();
    drop(text);
    let file = CredentialsFile::new(path.clone(), 1);
    let peak = peak_during(|| {
        let snapshot = file.read_snapshot().unwrap();
        snapshot.document().check_readable().unwrap();
        let written = file.update_from(&snapshot, &refresh("daemon")).unwrap();
        drop(snapshot);
        assert!(written.snapshot.document().has_section("daemon"));
    });
    eprintln!(
        "{name}: {size} bytes, peak {peak} bytes above the start ({:.2}x)",
        peak as f64 / size as f64
    );
    let allowed = 3 * size + EDITOR_ALLOWANCE;
    assert!(
        peak <= allowed,
        "{name}: reading and updating a {size}-byte file took {peak} bytes at the peak, more \
         than 3x the file + 8 MB ({allowed})"
    );
}

/// One test: the allocator's count is the whole process's, so the cases
/// must not run at once.
#[test]
fn hostile_shapes_stay_within_the_editors_share_of_the_promise() {
    // 300,000 sections of one short key: 4.1 MB.
    let text: String = (0..300_000).map(|i| format!("[s{i}]\nk=1\n")).collect();
    check("300,000 tiny sections", text);
    // 1.5 million keys in one section: 15 MB.
    let mut text = String::from("[big]\n");
    for i in 0..1_500_000 {
        text.push_str(&format!("k{i:06x}=1\n"));
    }
    check("1.5 million keys in one section", text);
}
