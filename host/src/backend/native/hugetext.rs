//! Backing the fork server's copy of this executable's code with huge pages.
//!
//! Every process the fork server forks runs this executable's code. Its code is mapped
//! from the file, and a fork copies no page-table entries of a file mapping: each child
//! faults in the pages of code it runs (with the kernel's fault-around, up to 16 entries
//! a fault) and its exit unmaps them all again: a large share of each spare's page faults
//! and of the entries its exit tears down (BENCHMARKS.md).
//!
//! So the fork server, once, before it forks anything, copies the 2 MiB-aligned middle
//! of each of its executable's read-only mappings into anonymous memory the kernel backs
//! with transparent huge pages (`madvise(MADV_HUGEPAGE)`) and moves that copy over the
//! original (`mremap`), at the same addresses, with the same protection and bytes. A fork
//! then copies one entry per 2 MiB of code (the children share the huge pages until one
//! writes to them, which code never is), no child faults on that code, and an exit
//! unmaps one entry per 2 MiB.
//!
//! Only when the copy is backed by huge pages in full is it moved: with small pages each
//! fork would copy an entry for every page of it. Where transparent huge pages are off,
//! or none can be had, the mappings stay as they were. The heads and tails (the parts
//! outside the aligned middle) stay mapped from the file. Nothing but the fork server
//! does this: it runs single-threaded, and the bytes under every address it executes stay
//! the same through the move.

use std::io::BufRead;

/// The size of a huge page this module uses (x86-64 and aarch64 with 4 KiB pages).
const HUGE: usize = 2 << 20;

/// One read-only private mapping of the executable, as `/proc/self/maps` gives it.
struct Mapping {
    start: usize,
    end: usize,
    exec: bool,
}

/// Moves the aligned middles of this executable's read-only mappings onto huge pages;
/// returns how many bytes were moved. Call it only while the process has one thread.
pub(crate) fn back_code_with_huge_pages() -> std::io::Result<usize> {
    if !enabled() {
        return Ok(0);
    }
    let mut moved = 0;
    for mapping in executable_mappings()? {
        let start = mapping.start.next_multiple_of(HUGE);
        let end = mapping.end / HUGE * HUGE;
        if end > start {
            // SAFETY: [start, end) lies inside a read-only private mapping of this
            // executable (from `/proc/self/maps`), and this process has one thread.
            if unsafe { move_onto_huge_pages(start, end - start, mapping.exec)? } {
                moved += end - start;
            }
        }
    }
    Ok(moved)
}

/// Whether transparent huge pages may back memory that asks for them.
fn enabled() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|s| s.contains("[always]") || s.contains("[madvise]"))
}

/// The executable's read-only private mappings: those of the file `/proc/self/exe` names
/// (by device and inode, which also holds for a file since replaced).
fn executable_mappings() -> std::io::Result<Vec<Mapping>> {
    use std::os::unix::fs::MetadataExt;
    let exe = std::fs::metadata("/proc/self/exe")?;
    let (major, minor) = (rustix::fs::major(exe.dev()), rustix::fs::minor(exe.dev()));
    let mut found = Vec::new();
    let maps = std::io::BufReader::new(std::fs::File::open("/proc/self/maps")?);
    for line in maps.lines() {
        let line = line?;
        // start-end perms offset major:minor inode path
        let mut fields = line.split_ascii_whitespace();
        let (Some(range), Some(perms), Some(_), Some(dev), Some(inode)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        if inode.parse::<u64>().ok() != Some(exe.ino())
            || dev != format!("{major:02x}:{minor:02x}")
            || !(perms == "r-xp" || perms == "r--p")
        {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        found.push(Mapping {
            start,
            end,
            exec: perms == "r-xp",
        });
    }
    Ok(found)
}

/// Copies [at, at + len) onto huge pages and moves the copy over it; `Ok(false)` when the
/// kernel did not back the whole copy with huge pages (nothing was changed then).
///
/// # Safety
/// [at, at + len) is readable, `HUGE`-aligned, and its bytes are not written while this
/// runs; no other thread runs.
unsafe fn move_onto_huge_pages(at: usize, len: usize, exec: bool) -> std::io::Result<bool> {
    use rustix::mm::{self, MapFlags, MprotectFlags, ProtFlags};
    // SAFETY: a fresh anonymous mapping, with room to align its start to `HUGE`.
    let area = unsafe {
        mm::mmap_anonymous(
            std::ptr::null_mut(),
            len + HUGE,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE | MapFlags::NORESERVE,
        )?
    } as usize;
    let copy = area.next_multiple_of(HUGE);
    let unmap = |from: usize, to: usize| {
        if to > from {
            // SAFETY: a part of `area` nothing refers to.
            let _ = unsafe { mm::munmap(from as *mut _, to - from) };
        }
    };
    unmap(area, copy);
    unmap(copy + len, area + len + HUGE);
    let give_up = || {
        unmap(copy, copy + len);
    };
    // SAFETY: `copy` is this function's own mapping.
    if let Err(e) = unsafe { mm::madvise(copy as *mut _, len, mm::Advice::LinuxHugepage) } {
        give_up();
        return Err(e.into());
    }
    // SAFETY: both ranges are mapped and readable (the caller's promise for `at`), `copy`
    // is writable, and they do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(at as *const u8, copy as *mut u8, len) };
    if huge_bytes(copy)? != len {
        give_up();
        return Ok(false);
    }
    let prot = if exec {
        MprotectFlags::READ | MprotectFlags::EXEC
    } else {
        MprotectFlags::READ
    };
    // SAFETY: `copy` is this function's own mapping.
    if let Err(e) = unsafe { mm::mprotect(copy as *mut _, len, prot) } {
        give_up();
        return Err(e.into());
    }
    // SAFETY: the copy holds the same bytes as [at, at + len), with the same protection,
    // so whatever runs or reads there (one thread, the caller's promise) sees no change.
    match unsafe {
        mm::mremap_fixed(
            copy as *mut _,
            len,
            len,
            mm::MremapFlags::MAYMOVE,
            at as *mut _,
        )
    } {
        Ok(_) => Ok(true),
        Err(e) => {
            give_up();
            Err(e.into())
        }
    }
}

/// How many bytes of the mapping starting at `start` huge pages back (`AnonHugePages` in
/// `/proc/self/smaps`).
fn huge_bytes(start: usize) -> std::io::Result<usize> {
    let smaps = std::io::BufReader::new(std::fs::File::open("/proc/self/smaps")?);
    let head = format!("{start:x}-");
    let mut inside = false;
    for line in smaps.lines() {
        let line = line?;
        // A mapping's header starts with its range; its fields' lines with `Name:`.
        if line
            .split_ascii_whitespace()
            .next()
            .is_some_and(|f| !f.ends_with(':'))
        {
            inside = line.starts_with(&head);
            continue;
        }
        if inside && let Some(kib) = line.strip_prefix("AnonHugePages:") {
            let kib = kib.trim().trim_end_matches("kB").trim();
            return Ok(kib.parse::<usize>().unwrap_or(0) * 1024);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executables_mappings_hold_its_code_and_constants() {
        let mappings = executable_mappings().unwrap();
        let code = the_executables_mappings_hold_its_code_and_constants as *const () as usize;
        let constant = HUGE_NAME.as_ptr() as usize;
        let holding = |at: usize| mappings.iter().find(|m| m.start <= at && at < m.end);
        assert!(holding(code).is_some_and(|m| m.exec), "code at {code:x}");
        assert!(
            holding(constant).is_some_and(|m| !m.exec),
            "constant at {constant:x}"
        );
        // The stack and the heap are no mapping of the executable.
        let local = 0u8;
        assert!(holding(&local as *const u8 as usize).is_none());
        assert!(holding(Box::new(0u8).as_ref() as *const u8 as usize).is_none());
    }

    static HUGE_NAME: &str = "a constant of the executable";
}
