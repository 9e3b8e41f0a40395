//! Symbols from the ELF files of the loaded modules, read once per batch of
//! addresses and streamed, never loaded whole.
//!
//! A snapshot needs the frames of a few thousand return addresses. The
//! `backtrace` crate answers one address at a time from a context that
//! keeps everything it parsed (every unit's line rows and functions, the
//! sorted symbol table): about 85 MB for ripgrep's 35 MB binary, all of it
//! resident at once. Here the addresses of a snapshot are sorted and
//! resolved together, module by module: `.debug_aranges` (or each unit's
//! root entry) tells which compilation units hold them, and only those
//! units are read, each in one pass over its line program and one over its
//! entries, keeping nothing but the answers. The file is mapped rather
//! than read, and the mapped pages are handed back to the kernel
//! ([`Mapping::drop_resident`]) every [`MAPPED_BUDGET`] bytes of units read,
//! so what the symbolizer holds at any moment is the answers so far, one
//! unit's abbreviations and at most that much of the file.
//!
//! The frames are those `backtrace` (through `addr2line`) reports: the
//! function of the innermost inlined frame first, the location of each
//! frame from the line table (innermost) or from the call site recorded in
//! the inlined subroutine below it, names as linkage names (demangled) or
//! plain names, and the ELF symbol table (`.symtab`, else `.dynsym`) for an
//! address that no debug information covers. One difference: where the
//! debug information names the function an address is in by its plain
//! name only (line tables only, as in a release build with
//! `debug = "line-tables-only"`), the symbol table's name with its path is
//! used instead (`push` becomes `alloc::vec::Vec<T,A>::push`); inlined
//! frames keep their plain names, the only ones there are.

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use gimli::{AttributeValue, EndianSlice, RunTimeEndian};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

use super::RawFrame;

/// How many bytes of debug information (units and their line programs) are
/// read between two calls to [`Mapping::drop_resident`]: the bound on the
/// mapped file's pages that a batch keeps resident.
pub(crate) const MAPPED_BUDGET: usize = 4 << 20;

/// What one read at a new place of the mapping may make resident: the
/// kernel maps up to 16 pages around a faulting one.
const FAULT_AROUND: usize = 64 << 10;

type Slice<'d> = EndianSlice<'d, RunTimeEndian>;
type Dwarf<'d> = gimli::Dwarf<Slice<'d>>;
type Unit<'d> = gimli::Unit<Slice<'d>>;
type UnitRef<'a, 'd> = gimli::UnitRef<'a, Slice<'d>>;

/// Resolves return addresses to their frames, innermost first: one list per
/// address, in the order given, empty where nothing is known. Each address
/// is looked up as `addr - 1`, inside the call it returns from.
pub(crate) fn resolve(addrs: &[usize]) -> Vec<Vec<RawFrame>> {
    let mut out = vec![Vec::new(); addrs.len()];
    let modules = loaded_modules();
    // (module, address in the module's file, index in `addrs`), so that each
    // module's addresses are sorted and together.
    let mut queries: Vec<(usize, u64, usize)> = Vec::with_capacity(addrs.len());
    for (index, &addr) in addrs.iter().enumerate() {
        let Some(probe) = addr.checked_sub(1) else {
            continue;
        };
        if let Some(m) = modules.iter().position(|m| m.contains(probe)) {
            let svma = probe.wrapping_sub(modules[m].bias) as u64;
            queries.push((m, svma, index));
        }
    }
    queries.sort_unstable();
    for group in queries.chunk_by(|a, b| a.0 == b.0) {
        let module = &modules[group[0].0];
        let batch: Vec<Query> = group
            .iter()
            .map(|&(_, svma, index)| Query { svma, index })
            .collect();
        resolve_in_module(&module.path, &batch, &mut out);
    }
    out
}

/// One address to resolve: where it is in its module's file, and where its
/// answer goes.
#[derive(Clone, Copy)]
struct Query {
    svma: u64,
    index: usize,
}

/// A loaded ELF module: its file and where its segments are.
struct Module {
    path: PathBuf,
    /// Address in memory minus address in the file.
    bias: usize,
    /// The loaded segments, in memory.
    segments: Vec<(usize, usize)>,
}

impl Module {
    fn contains(&self, addr: usize) -> bool {
        self.segments.iter().any(|&(b, e)| b <= addr && addr < e)
    }
}

fn loaded_modules() -> Vec<Module> {
    unsafe extern "C" fn callback(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `data` is the `Vec<Module>` passed below, borrowed
        // mutably for the duration of `dl_iterate_phdr`; `info` points to a
        // valid `dl_phdr_info` for the duration of this call, whose
        // `dlpi_phdr` holds `dlpi_phnum` program headers and whose
        // `dlpi_name` is null or NUL-terminated.
        unsafe {
            let modules = &mut *data.cast::<Vec<Module>>();
            let info = &*info;
            let bias = info.dlpi_addr as usize;
            let phdrs = if info.dlpi_phdr.is_null() {
                &[][..]
            } else {
                std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum))
            };
            let segments = phdrs
                .iter()
                .filter(|p| p.p_type == libc::PT_LOAD)
                .map(|p| {
                    let start = bias.wrapping_add(p.p_vaddr as usize);
                    (start, start.wrapping_add(p.p_memsz as usize))
                })
                .collect();
            let name = if info.dlpi_name.is_null() {
                &[][..]
            } else {
                CStr::from_ptr(info.dlpi_name).to_bytes()
            };
            // The main program is listed first with an empty name.
            let path = if name.is_empty() {
                if modules.is_empty() {
                    PathBuf::from("/proc/self/exe")
                } else {
                    return 0;
                }
            } else {
                PathBuf::from(OsStr::from_bytes(name))
            };
            modules.push(Module {
                path,
                bias,
                segments,
            });
        }
        0
    }
    let mut modules: Vec<Module> = Vec::new();
    // SAFETY: the callback only touches `modules` through `data`, and only
    // during this call.
    unsafe {
        libc::dl_iterate_phdr(Some(callback), (&raw mut modules).cast());
    }
    modules
}

/// A file mapped read-only, unmapped on drop.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
    /// The file, for reads that should not fault pages of the mapping in.
    file: File,
}

impl Mapping {
    fn open(path: &Path) -> Option<Mapping> {
        let file = File::open(path).ok()?;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: a fresh private read-only mapping of an open file; the
        // result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        Some(Mapping { ptr, len, file })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes until `self` is dropped.
        // Like every reader of a mapped file, this assumes that nobody
        // rewrites the file in place meanwhile (replacing it, as linkers
        // and package managers do, leaves this mapping on the old file).
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }

    /// `buf.len()` bytes of the file from `offset`, read without the
    /// mapping. A page fault in the mapping maps up to 16 pages around
    /// the one touched (the kernel's fault-around), so reading a few bytes
    /// from every unit header through it would make most of `.debug_info`
    /// resident.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> bool {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset).is_ok()
    }

    /// Hands the mapping's resident pages back to the kernel. The mapping
    /// is private and never written, so the next read of a page faults the
    /// same bytes in again from the file (or the page cache): slices into
    /// the mapping stay valid and unchanged.
    fn drop_resident(&self) {
        // SAFETY: the range is this mapping; see above for why the bytes
        // read through it do not change.
        unsafe {
            libc::madvise(self.ptr, self.len, libc::MADV_DONTNEED);
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` are a mapping made by `open`, and no
        // slice of it outlives `self` (they borrow it).
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

fn resolve_in_module(path: &Path, queries: &[Query], out: &mut [Vec<RawFrame>]) {
    let Some(map) = Mapping::open(path) else {
        return;
    };
    let Ok(file) = object::File::parse(map.bytes()) else {
        return;
    };
    // A stripped module (glibc as Debian installs it) may have its debug
    // information and full symbol table in a separate file.
    let debug_map = if has_dwarf(&file) && has_symtab(&file) {
        None
    } else {
        separate_debug_file(path, &file)
    };
    let debug_file = debug_map
        .as_ref()
        .and_then(|m| object::File::parse(m.bytes()).ok());
    if has_dwarf(&file) {
        resolve_dwarf(&file, &map, queries, out);
    } else if let (Some(debug_map), Some(debug_file)) = (&debug_map, &debug_file)
        && has_dwarf(debug_file)
    {
        resolve_dwarf(debug_file, debug_map, queries, out);
    }
    // Names from the symbol table: the separate file's when the module
    // keeps only its exported symbols (`.dynsym`), which lack the local
    // functions of the C runtime (`__libc_start_call_main`).
    match &debug_file {
        Some(debug_file) if !has_symtab(&file) && has_symtab(debug_file) => {
            resolve_symtab(debug_file, queries, out);
        }
        _ => resolve_symtab(&file, queries, out),
    }
}

fn has_symtab(file: &object::File<'_>) -> bool {
    file.symbols().next().is_some()
}

fn has_dwarf(file: &object::File<'_>) -> bool {
    section(file, ".debug_info").is_some_and(|s| !s.is_empty())
}

/// A section's bytes, if it is present and not compressed (a compressed
/// section would have to be inflated whole, which is what this module
/// avoids; such files get the symbol table's names only).
fn section<'d>(file: &object::File<'d>, name: &str) -> Option<&'d [u8]> {
    let section = file.section_by_name(name)?;
    let range = section.compressed_file_range().ok()?;
    if range.format != object::CompressionFormat::None {
        return None;
    }
    section.data().ok()
}

/// The separate debug information of a stripped module (as Debian's
/// `-dbg` packages install it): by build id, then by `.gnu_debuglink`.
fn separate_debug_file(path: &Path, file: &object::File<'_>) -> Option<Mapping> {
    const DEBUG_DIR: &str = "/usr/lib/debug";
    if let Ok(Some(id)) = file.build_id()
        && let Some((first, rest)) = id.split_first()
    {
        let hex: String = rest.iter().map(|b| format!("{b:02x}")).collect();
        let p = PathBuf::from(format!("{DEBUG_DIR}/.build-id/{first:02x}/{hex}.debug"));
        if let Some(map) = Mapping::open(&p) {
            return Some(map);
        }
    }
    if let Ok(Some((name, _crc))) = file.gnu_debuglink() {
        let name = Path::new(OsStr::from_bytes(name));
        let real = std::fs::canonicalize(path).ok()?;
        let dir = real.parent()?;
        let mut candidates = vec![dir.join(".debug").join(name)];
        if dir.join(name) != real {
            candidates.insert(0, dir.join(name));
        }
        if let Ok(relative) = dir.strip_prefix("/") {
            candidates.push(Path::new(DEBUG_DIR).join(relative).join(name));
        }
        return candidates.iter().find_map(|p| Mapping::open(p));
    }
    None
}

/// A unit of `.debug_info`, as [`unit_index`] finds it.
struct UnitStart {
    /// Its offset in `.debug_info`.
    offset: usize,
    /// Whether its root entry can have addresses (a `DW_AT_low_pc` or
    /// `DW_AT_ranges` attribute); true when that could not be told.
    covers_code: bool,
}

/// Where each unit of `.debug_info` starts, and whether it can cover any
/// code, from its header and its root entry's abbreviation: the header is
/// read from the file (see [`Mapping::read_at`]), the abbreviation from
/// `.debug_abbrev` (small, and read in order). Only about one unit in six
/// of a Rust program covers code; the others need not be parsed.
fn unit_index(map: &Mapping, file: &object::File<'_>, endian: RunTimeEndian) -> Vec<UnitStart> {
    let mut units = Vec::new();
    let Some((base, size)) = file
        .section_by_name(".debug_info")
        .and_then(|s| s.file_range())
    else {
        return units;
    };
    let abbrev = section(file, ".debug_abbrev").unwrap_or(&[]);
    let mut at = 0u64;
    let mut buf = [0u8; 64];
    while at + 4 <= size {
        let n = usize::try_from((size - at).min(64)).unwrap_or(64);
        if !map.read_at(base + at, &mut buf[..n]) {
            break;
        }
        let mut header = Bytes {
            data: &buf[..n],
            endian,
        };
        let Some((length, dwarf64)) = header.initial_length() else {
            break;
        };
        let (Ok(offset), Some(next)) = (
            usize::try_from(at),
            at.checked_add(if dwarf64 { 12 } else { 4 })
                .and_then(|a| a.checked_add(length)),
        ) else {
            break;
        };
        let covers_code = root_covers_code(&mut header, dwarf64, abbrev).unwrap_or(true);
        units.push(UnitStart {
            offset,
            covers_code,
        });
        at = next;
    }
    units
}

/// Whether the root entry's abbreviation has an address attribute, from
/// the rest of a unit header (after its length); `None` if it cannot be
/// told.
fn root_covers_code(header: &mut Bytes<'_>, dwarf64: bool, abbrev: &[u8]) -> Option<bool> {
    let version = header.u16()?;
    let abbrev_offset = if version >= 5 {
        let unit_type = header.u8()?;
        header.u8()?; // address size
        let offset = header.offset(dwarf64)?;
        match unit_type {
            // DW_UT_skeleton, DW_UT_split_compile: a DWO id.
            0x04 | 0x05 => header.skip(8)?,
            // DW_UT_type, DW_UT_split_type: a signature and an offset.
            0x02 | 0x06 => header.skip(if dwarf64 { 16 } else { 12 })?,
            _ => {}
        }
        offset
    } else {
        let offset = header.offset(dwarf64)?;
        header.u8()?; // address size
        offset
    };
    let code = header.uleb()?;
    let mut table = Bytes {
        data: abbrev.get(usize::try_from(abbrev_offset).ok()?..)?,
        endian: header.endian,
    };
    loop {
        let this = table.uleb()?;
        if this == 0 {
            return None;
        }
        table.uleb()?; // tag
        table.u8()?; // has children
        let mut has_address = false;
        loop {
            let (name, form) = (table.uleb()?, table.uleb()?);
            if form == u64::from(gimli::DW_FORM_implicit_const.0) {
                table.uleb()?; // a signed LEB128 skips like an unsigned one
            }
            if (name, form) == (0, 0) {
                break;
            }
            has_address |= name == u64::from(gimli::DW_AT_low_pc.0)
                || name == u64::from(gimli::DW_AT_ranges.0);
        }
        if this == code {
            return Some(has_address);
        }
    }
}

/// A little reader over bytes that may end anywhere.
struct Bytes<'a> {
    data: &'a [u8],
    endian: RunTimeEndian,
}

impl Bytes<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = self.data.split_at_checked(n)?;
        self.data = rest;
        Some(head)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        use gimli::Endianity;
        let endian = self.endian;
        self.take(2).map(|b| endian.read_u16(b))
    }

    fn u32(&mut self) -> Option<u32> {
        use gimli::Endianity;
        let endian = self.endian;
        self.take(4).map(|b| endian.read_u32(b))
    }

    fn u64(&mut self) -> Option<u64> {
        use gimli::Endianity;
        let endian = self.endian;
        self.take(8).map(|b| endian.read_u64(b))
    }

    /// A unit's length and whether it is in the 64-bit format.
    fn initial_length(&mut self) -> Option<(u64, bool)> {
        match self.u32()? {
            0xffff_ffff => Some((self.u64()?, true)),
            0xffff_fff0..=0xffff_fffe => None,
            n => Some((u64::from(n), false)),
        }
    }

    fn offset(&mut self, dwarf64: bool) -> Option<u64> {
        if dwarf64 {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    fn uleb(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
}

/// The indices of the queries (sorted by address) in `[begin, end)`.
fn queries_in(svmas: &[u64], begin: u64, end: u64) -> std::ops::Range<usize> {
    let lo = svmas.partition_point(|&a| a < begin);
    let hi = svmas.partition_point(|&a| a < end);
    lo..hi.max(lo)
}

fn resolve_dwarf(
    file: &object::File<'_>,
    map: &Mapping,
    queries: &[Query],
    out: &mut [Vec<RawFrame>],
) {
    let endian = if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let load = |id: gimli::SectionId| -> Result<Slice<'_>, gimli::Error> {
        Ok(EndianSlice::new(
            section(file, id.name()).unwrap_or(&[]),
            endian,
        ))
    };
    let Ok(dwarf) = Dwarf::load(load) else {
        return;
    };
    let svmas: Vec<u64> = queries.iter().map(|q| q.svma).collect();
    let mut done = vec![false; queries.len()];

    // The units `.debug_aranges` describes, and which queries fall in them.
    let mut aranged: Vec<usize> = Vec::new();
    let mut hits: Vec<(usize, usize)> = Vec::new();
    let mut aranged_query = vec![false; queries.len()];
    let mut headers = dwarf.debug_aranges.headers();
    while let Ok(Some(header)) = headers.next() {
        let unit = header.debug_info_offset().0;
        aranged.push(unit);
        let mut entries = header.entries();
        while let Ok(Some(entry)) = entries.next() {
            let range = entry.range();
            for q in queries_in(&svmas, range.begin, range.end) {
                hits.push((unit, q));
                aranged_query[q] = true;
            }
        }
    }
    aranged.sort_unstable();
    hits.sort_unstable();
    hits.dedup();
    // The queries in no unit `.debug_aranges` describes.
    let orphans: Vec<usize> = (0..queries.len()).filter(|&q| !aranged_query[q]).collect();

    let units = unit_index(map, file, endian);
    let starts: Vec<usize> = units.iter().map(|u| u.offset).collect();
    let mut foreign = ForeignUnits {
        starts: &starts,
        last: None,
    };
    let mut pager = Pager { map, read: 0 };
    let mut mine: Vec<usize> = Vec::new();
    for unit in &units {
        let offset = unit.offset;
        mine.clear();
        let mut parsed = None;
        if aranged.binary_search(&offset).is_ok() {
            let from = hits.partition_point(|&(u, _)| u < offset);
            mine.extend(
                hits[from..]
                    .iter()
                    .take_while(|&&(u, _)| u == offset)
                    .map(|&(_, q)| q)
                    .filter(|&q| !done[q]),
            );
        } else if unit.covers_code && orphans.iter().any(|&q| !done[q]) {
            // A unit `.debug_aranges` does not describe (rustc describes
            // every unit with code; a C compiler may not), while some
            // address is in no unit it describes: the unit's root entry
            // says which addresses it covers.
            let Ok(header) = dwarf
                .debug_info
                .header_from_offset(gimli::DebugInfoOffset(offset))
            else {
                continue;
            };
            if !matches!(
                header.type_(),
                gimli::UnitType::Compilation | gimli::UnitType::Skeleton(_)
            ) {
                continue;
            }
            let Ok(unit) = dwarf.unit(header) else {
                continue;
            };
            pager.read(FAULT_AROUND);
            if let Ok(mut ranges) = gimli::UnitRef::new(&dwarf, &unit).unit_ranges() {
                while let Ok(Some(range)) = ranges.next() {
                    mine.extend(queries_in(&svmas, range.begin, range.end).filter(|&q| !done[q]));
                }
            }
            mine.sort_unstable();
            mine.dedup();
            parsed = Some(unit);
        } else {
            continue;
        }
        if mine.is_empty() {
            continue;
        }
        let unit = match parsed {
            Some(unit) => unit,
            None => match dwarf
                .debug_info
                .header_from_offset(gimli::DebugInfoOffset(offset))
                .and_then(|header| dwarf.unit(header))
            {
                Ok(unit) => unit,
                Err(_) => continue,
            },
        };
        let unit_ref = gimli::UnitRef::new(&dwarf, &unit);
        // A unit that fails to parse part way keeps what it found so far:
        // the other units and the symbol table may still answer.
        let _ = resolve_in_unit(
            unit_ref,
            &mut foreign,
            &mut pager,
            queries,
            &mine,
            &mut done,
            out,
        );
    }
}

/// Keeps count of the bytes of the mapping read since its pages were last
/// dropped, and drops them every [`MAPPED_BUDGET`] bytes. A read at a new
/// place is counted as [`FAULT_AROUND`] bytes, what it may make resident.
struct Pager<'m> {
    map: &'m Mapping,
    read: usize,
}

impl Pager<'_> {
    fn read(&mut self, bytes: usize) {
        self.read += bytes;
        if self.read > MAPPED_BUDGET {
            self.map.drop_resident();
            self.read = 0;
        }
    }
}

/// How many line-table rows are read between two counts of their bytes.
const ROWS_PER_PAYMENT: usize = 1 << 14;

/// A subprogram or inlined subroutine that contains a query's address.
#[derive(Clone, Copy)]
struct Link<'d> {
    name: Option<Slice<'d>>,
    call_file: Option<u64>,
    call_line: u32,
    /// The entry's own `DW_AT_decl_file` and `DW_AT_decl_line`, if it has
    /// them, and its abstract origin or specification, which has them
    /// otherwise (see [`declared_line`]).
    decl: Option<(u64, u32)>,
    origin: Option<AttributeValue<Slice<'d>>>,
}

/// An open subprogram or inlined subroutine during the walk over a unit's
/// entries, with the queries (positions in `mine`) it contains.
struct Open {
    depth: isize,
    matched: Vec<usize>,
}

fn resolve_in_unit<'d>(
    unit: UnitRef<'_, 'd>,
    foreign: &mut ForeignUnits<'_, 'd>,
    pager: &mut Pager<'_>,
    queries: &[Query],
    mine: &[usize],
    done: &mut [bool],
    out: &mut [Vec<RawFrame>],
) -> Result<(), gimli::Error> {
    let svmas: Vec<u64> = mine.iter().map(|&q| queries[q].svma).collect();
    let mut locations: Vec<Option<(u64, u32)>> = vec![None; mine.len()];
    let mut chains: Vec<Vec<Link<'d>>> = vec![Vec::new(); mine.len()];
    let result = line_locations(unit, pager, &svmas, &mut locations)
        .and_then(|()| function_chains(unit, foreign, pager, &svmas, &mut chains));

    for (k, &q) in mine.iter().enumerate() {
        if locations[k].is_none() && chains[k].is_empty() {
            continue;
        }
        done[q] = true;
        let mut frames = Vec::with_capacity(chains[k].len().max(1));
        let (mut file, mut line) = match locations[k] {
            Some((file, line)) => (Some(file), line),
            None => (None, 0),
        };
        if chains[k].is_empty() {
            frames.push(RawFrame {
                function: None,
                file: file.and_then(|f| render_file(unit, f)),
                line,
            });
        }
        // Innermost first: each inlined subroutine's own location is where
        // the address is in it; the frame around it is at its call site.
        // A frame at line 0 is shown at its function's `fn` line.
        for link in chains[k].iter().rev() {
            let rendered = file.and_then(|f| render_file(unit, f));
            let shown = match (line, &rendered) {
                (0, Some(rendered)) => declared_line(unit, link, rendered).unwrap_or(0),
                _ => line,
            };
            frames.push(RawFrame {
                function: link.name.map(|n| demangle(n.slice())),
                file: rendered,
                line: shown,
            });
            file = link.call_file;
            line = link.call_line;
        }
        out[queries[q].index] = frames;
    }
    result
}

/// The line table's file and line for each address (sorted), read in one
/// pass over the unit's line program without storing its rows: the rows
/// of a sequence are in address order, so each row covers the addresses
/// up to the next row's. Like `addr2line`, rows at the same address keep
/// the last one's location, and a sequence counts only if it is not empty.
fn line_locations(
    unit: UnitRef<'_, '_>,
    pager: &mut Pager<'_>,
    svmas: &[u64],
    locations: &mut [Option<(u64, u32)>],
) -> Result<(), gimli::Error> {
    let Some(program) = unit.line_program.clone() else {
        return Ok(());
    };
    // The program is read once, in order; a long one is paid for as it
    // goes, so that the pages it leaves behind can be dropped.
    let length = program.header().raw_program_buf().len();
    pager.read(length.min(FAULT_AROUND));
    let mut paid = 0usize;
    let mut rows = program.rows();
    let mut count = 0usize;
    let mut sequence_start: Option<u64> = None;
    let mut previous: Option<(u64, u64, u32)> = None;
    let mut pending: Vec<(usize, u64, u32)> = Vec::new();
    let (Some(&lowest), Some(&highest)) = (svmas.first(), svmas.last()) else {
        return Ok(());
    };
    let cover = |from: (u64, u64, u32), to: u64, pending: &mut Vec<(usize, u64, u32)>| {
        // Most rows are far from every address: two comparisons tell.
        if to <= lowest || from.0 > highest {
            return;
        }
        for k in queries_in(svmas, from.0, to) {
            pending.push((k, from.1, from.2));
        }
    };
    while let Some((_, row)) = rows.next_row()? {
        count += 1;
        if count.is_multiple_of(ROWS_PER_PAYMENT) && paid < length {
            // About three bytes per row.
            let step = (3 * ROWS_PER_PAYMENT).min(length - paid);
            pager.read(step);
            paid += step;
        }
        let address = row.address();
        if row.end_sequence() {
            if let Some(p) = previous {
                cover(p, address, &mut pending);
            }
            if sequence_start.is_some_and(|start| start < address) {
                for &(k, file, line) in &pending {
                    locations[k].get_or_insert((file, line));
                }
            }
            pending.clear();
            sequence_start = None;
            previous = None;
            continue;
        }
        let line = row
            .line()
            .map_or(0, |l| u32::try_from(l.get()).unwrap_or(u32::MAX));
        let here = (address, row.file_index(), line);
        if let Some(p) = previous
            && p.0 < address
        {
            cover(p, address, &mut pending);
        }
        sequence_start.get_or_insert(address);
        previous = Some(here);
    }
    Ok(())
}

/// For each address (sorted), the subprogram that contains it and the
/// inlined subroutines within it that do, outermost first, in one walk over
/// the unit's entries.
fn function_chains<'d>(
    unit: UnitRef<'_, 'd>,
    foreign: &mut ForeignUnits<'_, 'd>,
    pager: &mut Pager<'_>,
    svmas: &[u64],
    chains: &mut [Vec<Link<'d>>],
) -> Result<(), gimli::Error> {
    let mut stack: Vec<Open> = Vec::new();
    let mut ranges: Vec<gimli::Range> = Vec::new();
    let mut entries = unit.entries_raw(None)?;
    let mut paid = 0usize;
    while !entries.is_empty() {
        let at = entries.next_offset().0;
        if at - paid >= FAULT_AROUND {
            pager.read(at - paid);
            paid = at;
        }
        let depth = entries.next_depth();
        let Some(abbrev) = entries.read_abbreviation()? else {
            continue;
        };
        while stack.last().is_some_and(|o| o.depth >= depth) {
            stack.pop();
        }
        let tag = abbrev.tag();
        let is_function = tag == gimli::DW_TAG_subprogram;
        let is_inlined = tag == gimli::DW_TAG_inlined_subroutine;
        // A subprogram nested in a function is not part of it (as in
        // `addr2line`); an inlined subroutine only matters inside a
        // function that contains a query.
        let relevant = match stack.last() {
            None => is_function,
            Some(open) => is_inlined && !open.matched.is_empty(),
        };
        if !relevant {
            entries.skip_attributes(abbrev.attributes())?;
            if (is_function || is_inlined) && !stack.is_empty() {
                stack.push(Open {
                    depth,
                    matched: Vec::new(),
                });
            }
            continue;
        }
        let die = read_die(unit, &mut entries, abbrev.attributes(), &mut ranges)?;
        let inside = |k: &usize| {
            ranges
                .iter()
                .any(|r| r.begin <= svmas[*k] && svmas[*k] < r.end)
        };
        let matched: Vec<usize> = match stack.last() {
            // A function: every query in its ranges that has none yet.
            None => {
                let mut m: Vec<usize> = ranges
                    .iter()
                    .flat_map(|r| queries_in(svmas, r.begin, r.end))
                    .filter(|&k| chains[k].is_empty())
                    .collect();
                m.sort_unstable();
                m.dedup();
                m
            }
            Some(open) => open.matched.iter().copied().filter(inside).collect(),
        };
        if !matched.is_empty() {
            let link = Link {
                name: {
                    // A name is read from `.debug_str`, away from the
                    // entries.
                    pager.read(FAULT_AROUND);
                    die.name(unit, foreign)
                },
                call_file: die.call_file,
                call_line: die.call_line,
                decl: die.decl_file.map(|f| (f, die.decl_line)),
                origin: die.origin,
            };
            for &k in &matched {
                chains[k].push(link);
            }
        }
        stack.push(Open { depth, matched });
    }
    Ok(())
}

/// The attributes of a subprogram or inlined subroutine that matter here.
#[derive(Default)]
struct Die<'d> {
    // Names are read only for the entries that contain a query: reading
    // one touches `.debug_str` far from the entries.
    linkage_name: Option<AttributeValue<Slice<'d>>>,
    name: Option<AttributeValue<Slice<'d>>>,
    origin: Option<AttributeValue<Slice<'d>>>,
    call_file: Option<u64>,
    call_line: u32,
    decl_file: Option<u64>,
    decl_line: u32,
}

impl<'d> Die<'d> {
    /// The name `addr2line` gives: the linkage name, else the name, else
    /// the abstract origin's or specification's.
    fn name(&self, unit: UnitRef<'_, 'd>, foreign: &mut ForeignUnits<'_, 'd>) -> Option<Slice<'d>> {
        let string = |v: Option<AttributeValue<Slice<'d>>>| unit.attr_string(v?).ok();
        string(self.linkage_name)
            .or_else(|| string(self.name))
            .or_else(|| self.origin.and_then(|v| name_attr(unit, foreign, v, 16)))
    }
}

/// Reads an entry's attributes; its address ranges go to `ranges`.
fn read_die<'d>(
    unit: UnitRef<'_, 'd>,
    entries: &mut gimli::EntriesRaw<'_, Slice<'d>>,
    specs: &[gimli::AttributeSpecification],
    ranges: &mut Vec<gimli::Range>,
) -> Result<Die<'d>, gimli::Error> {
    let mut die = Die::default();
    let (mut low, mut high, mut size, mut list) = (None, None, None, None);
    for spec in specs {
        let attr = entries.read_attribute(*spec)?;
        match attr.name() {
            gimli::DW_AT_low_pc => low = unit.attr_address(attr.value())?,
            gimli::DW_AT_high_pc => match attr.value() {
                AttributeValue::Udata(n) => size = Some(n),
                v => high = unit.attr_address(v)?,
            },
            gimli::DW_AT_ranges => list = unit.attr_ranges_offset(attr.value())?,
            gimli::DW_AT_linkage_name | gimli::DW_AT_MIPS_linkage_name => {
                die.linkage_name = Some(attr.value());
            }
            gimli::DW_AT_name => die.name = Some(attr.value()),
            gimli::DW_AT_abstract_origin | gimli::DW_AT_specification => {
                die.origin = Some(attr.value());
            }
            gimli::DW_AT_call_file => die.call_file = file_index(unit, attr.value()),
            gimli::DW_AT_call_line => die.call_line = line_value(&attr),
            gimli::DW_AT_decl_file => die.decl_file = file_index(unit, attr.value()),
            gimli::DW_AT_decl_line => die.decl_line = line_value(&attr),
            _ => {}
        }
    }
    ranges.clear();
    if let Some(offset) = list {
        let mut list = unit.ranges(offset)?;
        while let Some(range) = list.next()? {
            ranges.push(range);
        }
    } else if let (Some(begin), Some(end)) = (low, high) {
        ranges.push(gimli::Range { begin, end });
    } else if let (Some(begin), Some(size)) = (low, size) {
        // A -1 tombstone overflows into an empty range, dropped below.
        ranges.push(gimli::Range {
            begin,
            end: begin.wrapping_add(size),
        });
    }
    ranges.retain(|r| r.begin < r.end);
    Ok(die)
}

/// A file attribute's index in the unit's line table: DWARF 5 numbers
/// files from 0; before, 0 meant none.
fn file_index(unit: UnitRef<'_, '_>, value: AttributeValue<Slice<'_>>) -> Option<u64> {
    match value {
        AttributeValue::FileIndex(f) if f > 0 || unit.header.version() >= 5 => Some(f),
        _ => None,
    }
}

/// A line attribute's value; 0 when it has none or an unreadable one.
fn line_value(attr: &gimli::Attribute<Slice<'_>>) -> u32 {
    attr.udata_value()
        .map_or(0, |l| u32::try_from(l).unwrap_or(u32::MAX))
}

/// The line of the `fn` of a frame whose code the line table gives line 0
/// (LLVM's line for an instruction made from several lines, such as a
/// call it merged), if the function is declared in the frame's file
/// (`rendered`): the line a source view can show for "somewhere in this
/// function", and one that keeps each function's such code apart when
/// frames are grouped by line. The declaration is the entry's own, or
/// that of its abstract origin or specification in the same unit (one in
/// another unit, after link-time optimization, is not followed: its file
/// index is in that unit's line table).
fn declared_line(unit: UnitRef<'_, '_>, link: &Link<'_>, rendered: &str) -> Option<u32> {
    let mut decl = link.decl;
    let mut next = link.origin;
    for _ in 0..16 {
        if decl.is_some() {
            break;
        }
        let AttributeValue::UnitRef(offset) = next? else {
            return None;
        };
        (decl, next) = entry_declaration(unit, offset)?;
    }
    let (file, line) = decl?;
    (line > 0 && render_file(unit, file)? == rendered).then_some(line)
}

/// An entry's declaration (file, line), or the link to follow for it.
#[allow(clippy::type_complexity)]
fn entry_declaration<'d>(
    unit: UnitRef<'_, 'd>,
    offset: gimli::UnitOffset,
) -> Option<(Option<(u64, u32)>, Option<AttributeValue<Slice<'d>>>)> {
    let mut entries = unit.entries_raw(Some(offset)).ok()?;
    let abbrev = entries.read_abbreviation().ok()??;
    let (mut file, mut line, mut next) = (None, 0, None);
    for spec in abbrev.attributes() {
        let attr = entries.read_attribute(*spec).ok()?;
        match attr.name() {
            gimli::DW_AT_decl_file => file = file_index(unit, attr.value()),
            gimli::DW_AT_decl_line => line = line_value(&attr),
            gimli::DW_AT_abstract_origin | gimli::DW_AT_specification => {
                next = Some(attr.value());
            }
            _ => {}
        }
    }
    Some((file.map(|f| (f, line)), next))
}

/// The name of the entry an abstract origin or specification points to,
/// following such links at most `depth` times.
fn name_attr<'d>(
    unit: UnitRef<'_, 'd>,
    foreign: &mut ForeignUnits<'_, 'd>,
    value: AttributeValue<Slice<'d>>,
    depth: usize,
) -> Option<Slice<'d>> {
    if depth == 0 {
        return None;
    }
    match value {
        AttributeValue::UnitRef(offset) => name_entry(unit, foreign, offset, depth),
        AttributeValue::DebugInfoRef(offset) => {
            // The other unit is taken out of the cache while it is read, so
            // that a link from it to a third unit can use the cache too.
            let (start, other) = foreign.take(unit.dwarf, offset.0)?;
            let name = offset.to_unit_offset(&other.header).and_then(|at| {
                name_entry(gimli::UnitRef::new(unit.dwarf, &other), foreign, at, depth)
            });
            foreign.last = Some((start, other));
            name
        }
        _ => None,
    }
}

fn name_entry<'d>(
    unit: UnitRef<'_, 'd>,
    foreign: &mut ForeignUnits<'_, 'd>,
    offset: gimli::UnitOffset,
    depth: usize,
) -> Option<Slice<'d>> {
    match entry_names(unit, offset)? {
        (Some(name), _) => Some(name),
        (None, Some(next)) => name_attr(unit, foreign, next, depth - 1),
        (None, None) => None,
    }
}

/// An entry's own name (linkage name first), or the link to follow.
#[allow(clippy::type_complexity)]
fn entry_names<'d>(
    unit: UnitRef<'_, 'd>,
    offset: gimli::UnitOffset,
) -> Option<(Option<Slice<'d>>, Option<AttributeValue<Slice<'d>>>)> {
    let mut entries = unit.entries_raw(Some(offset)).ok()?;
    let abbrev = entries.read_abbreviation().ok()??;
    let (mut name, mut next) = (None, None);
    for spec in abbrev.attributes() {
        let attr = entries.read_attribute(*spec).ok()?;
        match attr.name() {
            gimli::DW_AT_linkage_name | gimli::DW_AT_MIPS_linkage_name => {
                if let Ok(n) = unit.attr_string(attr.value()) {
                    return Some((Some(n), None));
                }
            }
            gimli::DW_AT_name => name = unit.attr_string(attr.value()).ok().or(name),
            gimli::DW_AT_abstract_origin | gimli::DW_AT_specification => {
                next = Some(attr.value());
            }
            _ => {}
        }
    }
    Some((name, next))
}

/// Units named by references from another unit (`DW_FORM_ref_addr`, from
/// link-time optimization): where units start, and the last one parsed.
struct ForeignUnits<'s, 'd> {
    starts: &'s [usize],
    last: Option<(usize, Unit<'d>)>,
}

impl<'d> ForeignUnits<'_, 'd> {
    /// The unit holding `offset` in `.debug_info`, with its start.
    fn take(&mut self, dwarf: &Dwarf<'d>, offset: usize) -> Option<(usize, Unit<'d>)> {
        let start = self.starts[..self.starts.partition_point(|&s| s <= offset)]
            .last()
            .copied()?;
        if let Some((s, unit)) = self.last.take()
            && s == start
        {
            return Some((s, unit));
        }
        let header = dwarf
            .debug_info
            .header_from_offset(gimli::DebugInfoOffset(start))
            .ok()?;
        Some((start, dwarf.unit(header).ok()?))
    }
}

/// A file of the unit's line table as `addr2line` renders it: the
/// compilation directory, the file's directory and its name, each later
/// absolute one replacing what came before.
fn render_file(unit: UnitRef<'_, '_>, index: u64) -> Option<String> {
    let header = unit.line_program.as_ref()?.header();
    let file = header.file(index)?;
    let mut path = unit
        .comp_dir
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    if file.directory_index() != 0
        && let Some(dir) = file.directory(header)
        && let Ok(dir) = unit.attr_string(dir)
    {
        path_push(&mut path, &dir.to_string_lossy());
    }
    path_push(
        &mut path,
        &unit.attr_string(file.path_name()).ok()?.to_string_lossy(),
    );
    Some(path)
}

fn path_push(path: &mut String, p: &str) {
    let rooted = |p: &str| {
        p.starts_with('/')
            || p.starts_with('\\')
            || p.get(1..3).is_some_and(|s| s == ":/" || s == ":\\")
    };
    if rooted(p) {
        *path = p.to_owned();
    } else {
        let sep = if path.starts_with('\\') || path.get(1..3) == Some(":\\") {
            '\\'
        } else {
            '/'
        };
        if !path.is_empty() && !path.ends_with(sep) {
            path.push(sep);
        }
        path.push_str(p);
    }
}

/// A symbol name as `backtrace` prints it with `{:#}`: demangled without
/// the hash when it is a Rust symbol, as it is otherwise.
fn demangle(name: &[u8]) -> String {
    let text = String::from_utf8_lossy(name);
    match rustc_demangle::try_demangle(&text) {
        Ok(d) => format!("{d:#}"),
        Err(_) => text.into_owned(),
    }
}

/// Whether the function the address is in (the last frame, not inlined)
/// has only a plain name, without its path: the debug information of a
/// build with `debug = "line-tables-only"` (what the README suggests for
/// release builds) names functions by `DW_AT_name` alone, with no linkage
/// name, while the symbol table keeps the full one.
fn plain_outer_name(frames: &[RawFrame]) -> bool {
    frames
        .last()
        .and_then(|f| f.function.as_deref())
        .is_some_and(|name| !name.contains("::"))
}

/// Names from the ELF symbol table: the nearest function or object symbol
/// at or below the address, if the address is within its size. As
/// `backtrace` does, for the queries that the debug information left
/// without a function name (or without any frame); and, unlike it, for
/// the function the address is in when the debug information gave only
/// its plain name (see [`plain_outer_name`]), if the symbol's name is that
/// name with its path (`push` becomes `alloc::vec::Vec<T,A>::push`).
fn resolve_symtab(file: &object::File<'_>, queries: &[Query], out: &mut [Vec<RawFrame>]) {
    let needs = |frames: &[RawFrame]| {
        frames.is_empty() || frames.iter().any(|f| f.function.is_none()) || plain_outer_name(frames)
    };
    if !queries.iter().any(|q| needs(&out[q.index])) {
        return;
    }
    let mut symbols: Vec<(u64, u64, &[u8])> = Vec::new();
    collect_symbols(file.symbols(), &mut symbols);
    if symbols.is_empty() {
        collect_symbols(file.dynamic_symbols(), &mut symbols);
    }
    symbols.sort_unstable_by_key(|s| s.0);
    for q in queries {
        let frames = &mut out[q.index];
        if !needs(frames) {
            continue;
        }
        let i = symbols.partition_point(|s| s.0 <= q.svma);
        let Some(&(address, size, name)) = i.checked_sub(1).and_then(|i| symbols.get(i)) else {
            continue;
        };
        if q.svma > address.saturating_add(size) {
            continue;
        }
        let name = demangle(name);
        if frames.is_empty() {
            frames.push(RawFrame {
                function: Some(name),
                file: None,
                line: 0,
            });
            continue;
        }
        if plain_outer_name(frames)
            && let Some(outer) = frames.last_mut()
            && let Some(plain) = outer.function.as_deref()
            && name
                .strip_suffix(plain)
                .is_some_and(|path| path.ends_with("::"))
        {
            outer.function = Some(name.clone());
        }
        for f in frames.iter_mut().filter(|f| f.function.is_none()) {
            f.function = Some(name.clone());
        }
    }
}

/// The defined function and object symbols: (address, size, name).
fn collect_symbols<'d>(
    symbols: impl Iterator<Item = impl ObjectSymbol<'d>>,
    out: &mut Vec<(u64, u64, &'d [u8])>,
) {
    out.extend(
        symbols
            .filter(|s| matches!(s.kind(), SymbolKind::Text | SymbolKind::Data))
            .filter(|s| !s.is_undefined())
            .filter_map(|s| Some((s.address(), s.size(), s.name_bytes().ok()?))),
    );
}

#[cfg(test)]
mod tests {
    use super::super::backtrace_frames;
    use super::*;

    /// Whether `ours` are `backtrace`'s frames `theirs`, but for the name
    /// of the function the address is in, which may be `theirs`'s plain
    /// name with its path from the symbol table (see `plain_outer_name`:
    /// a build with line tables only, the release profile's), and for the
    /// frames `backtrace` puts at line 0, which ours put at their
    /// function's declaration (`declared_line`): those of ours are added
    /// to `declared`.
    fn agrees(ours: &[RawFrame], theirs: &[RawFrame], declared: &mut Vec<RawFrame>) -> bool {
        let (Some((our_outer, our_inner)), Some((their_outer, their_inner))) =
            (ours.split_last(), theirs.split_last())
        else {
            return ours == theirs;
        };
        let mut same_place = |ours: &RawFrame, theirs: &RawFrame| {
            if ours.line != theirs.line && theirs.line == 0 && ours.line > 0 {
                declared.push(ours.clone());
            } else if ours.line != theirs.line {
                return false;
            }
            ours.file == theirs.file
        };
        our_inner.len() == their_inner.len()
            && our_inner
                .iter()
                .zip(their_inner)
                .all(|(o, t)| same_place(o, t) && o.function == t.function)
            && same_place(our_outer, their_outer)
            && same_function(&our_outer.function, &their_outer.function)
    }

    /// Checks frames that `declared_line` moved from line 0 to their
    /// function's declaration: where the file is on this machine (this
    /// crate's sources, and the standard library's if installed), the line
    /// is one that declares a function or a closure, or makes one (a
    /// derive, a macro). Returns how many it could check.
    fn check_declared(declared: &[RawFrame]) -> usize {
        let mut checked = 0;
        for frame in declared {
            let Some(text) = frame
                .file
                .as_deref()
                .and_then(|f| std::fs::read_to_string(f).ok())
            else {
                continue;
            };
            let line = text.lines().nth(frame.line as usize - 1).unwrap_or("");
            // A function's `fn`, a closure's bars, or the derive or macro
            // that wrote the function.
            assert!(
                ["fn ", "|", "async", "derive", "!"]
                    .iter()
                    .any(|p| line.contains(p)),
                "{frame:?} is at {line:?}"
            );
            checked += 1;
        }
        checked
    }

    /// Whether a function name of ours is `backtrace`'s, or its plain name
    /// with a path.
    fn same_function(ours: &Option<String>, theirs: &Option<String>) -> bool {
        match (ours, theirs) {
            (Some(ours), Some(theirs)) if ours != theirs => {
                !theirs.contains("::")
                    && ours
                        .strip_suffix(theirs.as_str())
                        .is_some_and(|path| path.ends_with("::"))
            }
            _ => ours == theirs,
        }
    }

    #[test]
    fn agrees_with_backtrace_across_the_test_binary() {
        // Addresses spread over the whole executable code of this test
        // binary (its own code, std's, the dependencies'), with and without
        // inlined frames, compared with what `backtrace` says of each.
        let modules = loaded_modules();
        let exe = &modules[0];
        let (start, end) = exe
            .segments
            .iter()
            .copied()
            .max_by_key(|&(b, e)| e - b)
            .unwrap();
        let addrs: Vec<usize> = (start + 1..end).step_by(997).collect();
        assert!(addrs.len() > 1000, "{} addresses", addrs.len());
        let ours = resolve(&addrs);
        let mut with_file = 0;
        let mut declared = Vec::new();
        for (&addr, frames) in addrs.iter().zip(&ours) {
            let theirs = backtrace_frames(addr);
            assert!(
                agrees(frames, &theirs, &mut declared),
                "at {addr:#x}: {frames:?} {theirs:?}"
            );
            with_file += usize::from(frames.iter().any(|f| f.file.is_some()));
        }
        assert!(
            with_file > addrs.len() / 2,
            "{with_file} of {}",
            addrs.len()
        );
        // Optimized code has such frames; this debug build has some too.
        assert!(!declared.is_empty());
        let checked = check_declared(&declared);
        eprintln!(
            "{} frames at a declaration, {checked} checked",
            declared.len()
        );
        // A debug build has such frames in this crate's own files (241,
        // 120 of them here when written); a release build's are in the
        // standard library's and the dependencies' only.
        if cfg!(debug_assertions) {
            assert!(checked > 0);
        }
    }

    #[test]
    fn a_live_stack_agrees_with_backtrace() {
        // This thread's stack runs through the C library (`start_thread`, a
        // local symbol: in `.symtab`, which Debian moves to a separate
        // debug file, not in `.dynsym`). Where the debug information is
        // compressed (Debian's debug files), only the names can agree.
        let mut ips = Vec::new();
        backtrace::trace(|frame| {
            ips.push(frame.ip() as usize);
            true
        });
        let exe = &loaded_modules()[0];
        let ours = resolve(&ips);
        for (&ip, frames) in ips.iter().zip(&ours) {
            let theirs = backtrace_frames(ip);
            if exe.contains(ip.wrapping_sub(1)) {
                assert!(
                    agrees(frames, &theirs, &mut Vec::new()),
                    "at {ip:#x}: {frames:?} {theirs:?}"
                );
            } else {
                let outer = |f: &[RawFrame]| f.last().and_then(|f| f.function.clone());
                assert!(
                    same_function(&outer(frames), &outer(&theirs)),
                    "at {ip:#x}: {frames:?} {theirs:?}"
                );
            }
        }
    }

    /// The line of `known_function`'s `fn`, where its first instruction is.
    const KNOWN_LINE: u32 = line!() + 2;
    #[inline(never)]
    fn known_function() -> u64 {
        std::hint::black_box(7)
    }

    #[test]
    fn a_known_function_at_its_line() {
        let entry = known_function as fn() -> u64 as usize;
        let frames = &resolve(&[entry + 1])[0];
        assert_eq!(frames.len(), 1, "{frames:?}");
        let f = &frames[0];
        assert_eq!(
            f.function.as_deref(),
            Some("tracemalloc::symbolize::elf::tests::known_function")
        );
        assert!(
            f.file
                .as_deref()
                .unwrap()
                .ends_with("recorder/src/symbolize/elf.rs"),
            "{f:?}"
        );
        assert_eq!(f.line, KNOWN_LINE);
    }

    /// The return address of the call to this function, found by the
    /// `backtrace` crate's unwinder.
    #[inline(never)]
    fn return_address() -> usize {
        let me = return_address as fn() -> usize as usize;
        let mut found = false;
        let mut ret = 0;
        backtrace::trace(|frame| {
            if found {
                ret = frame.ip() as usize;
                return false;
            }
            found = frame.symbol_address() as usize == me;
            true
        });
        ret
    }

    const CALL_IN_CALLEE: u32 = line!() + 3;
    #[inline(always)]
    fn inlined_callee() -> usize {
        return_address()
    }

    const CALL_IN_CALLER: u32 = line!() + 3;
    #[inline(never)]
    fn inlining_caller() -> usize {
        inlined_callee() + std::hint::black_box(0)
    }

    #[test]
    fn an_inlined_frame_and_its_caller() {
        // `#[inline(always)]` is honoured without optimizations too, so the
        // return address is in `inlining_caller`'s code, inside the inlined
        // `inlined_callee`.
        let ret = inlining_caller();
        assert_ne!(ret, 0);
        let frames = &resolve(&[ret])[0];
        let names: Vec<_> = frames
            .iter()
            .map(|f| f.function.as_deref().unwrap_or("?"))
            .collect();
        // The inlined frame has its path only with full debug information
        // (the test profile's), not with line tables only (the release
        // profile's); the function the address is in has it either way,
        // from the symbol table.
        assert!(
            matches!(
                names[0],
                "tracemalloc::symbolize::elf::tests::inlined_callee" | "inlined_callee"
            ),
            "{frames:?}"
        );
        assert_eq!(
            names[1], "tracemalloc::symbolize::elf::tests::inlining_caller",
            "{frames:?}"
        );
        assert_eq!(
            (frames[0].line, frames[1].line),
            (CALL_IN_CALLEE, CALL_IN_CALLER)
        );
        assert!(
            frames[1].file.as_deref().unwrap().ends_with("elf.rs"),
            "{frames:?}"
        );
    }

    #[test]
    fn a_module_without_debug_info_gives_its_symbol_names() {
        // glibc, as installed, is stripped of its debug information (and of
        // `.symtab`): its exported names remain, in `.dynsym`.
        let malloc = libc::malloc as unsafe extern "C" fn(usize) -> *mut libc::c_void as usize;
        let libc_module = loaded_modules()
            .into_iter()
            .find(|m| m.contains(malloc))
            .unwrap();
        let map = Mapping::open(&libc_module.path).unwrap();
        let file = object::File::parse(map.bytes()).unwrap();
        let frames = &resolve(&[malloc + 1])[0];
        assert_eq!(frames.len(), 1, "{frames:?}");
        let name = frames[0].function.as_deref().unwrap();
        assert!(["malloc", "__libc_malloc"].contains(&name), "{frames:?}");
        if !has_dwarf(&file) && separate_debug_file(&libc_module.path, &file).is_none() {
            assert_eq!((frames[0].file.as_deref(), frames[0].line), (None, 0));
        }
    }

    #[test]
    fn addresses_outside_every_module_are_unknown() {
        let heap = Box::new(0u64);
        let addrs = [0, 1, &raw const *heap as usize, usize::MAX];
        assert!(resolve(&addrs).iter().all(Vec::is_empty));
    }

    #[test]
    fn paths_join_like_addr2lines() {
        let join = |parts: &[&str]| {
            let mut p = String::new();
            for part in parts {
                path_push(&mut p, part);
            }
            p
        };
        assert_eq!(join(&["/work/p", "src", "main.rs"]), "/work/p/src/main.rs");
        assert_eq!(
            join(&["/work/p", "/rustc/h/library/core/src", "iter.rs"]),
            "/rustc/h/library/core/src/iter.rs"
        );
        assert_eq!(join(&["", "src/lib.rs"]), "src/lib.rs");
        assert_eq!(join(&["C:\\b", "x.rs"]), "C:\\b\\x.rs");
    }
}
