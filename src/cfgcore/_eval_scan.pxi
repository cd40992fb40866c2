# Part of cfgcore._eval (included by _eval.pyx, which holds the declarations every part
# shares): the MessagePack duplicate-key scan. msgspec keeps the last of two equal keys
# in a map without a word; a flag document that repeats a key is refused instead (as
# YAML and JSON ones are), so every reader of it serves the same flags. The scan walks
# the document's bytes once, iteratively (an explicit stack of at most MP_SCAN_DEPTH
# open containers), and compares each map's keys as they decode: see
# msgpack_duplicate_at. The reference is cfgcore._eval_py.msgpack_duplicate_at; both
# must answer the same for any bytes (tests/test_core_msgpack_duplicates.py).
#
# The same walk finds where a flag document's members are (msgpack_spans): each member
# of its top-level map, and of that map's "flags" and "segments" maps, as byte offsets,
# so a reader splits the document into flags without one long call holding the GIL. The
# walk of a bytes object (immutable) runs with the GIL released.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.math cimport floor, isinf
from libc.stdint cimport int8_t, int16_t, int64_t
from libc.stdlib cimport realloc

import array as _mp_array  # (not _array: the JSON split's part names its array type so)
import os as _os

cdef enum:
    # Open containers the scan follows; deeper documents are not walked (-1): every
    # part of a flag document is refused far above this depth anyway (free-form values
    # past MAX_VALUE_DEPTH, 100; conditions past 32 levels).
    MP_SCAN_DEPTH = 1000
    # A map's keys are compared one by one up to this many; a larger map (a document's
    # flags, a long variant) indexes its keys in a hash table.
    MP_SMALL_MAP = 16
    MP_FIRST_CLASS = 6  # a map's first table has 2**6 slots, then 2**7, ...
    # Tables of up to 2**MP_KEEP_CLASS slots (1 MiB) and room for up to MP_KEEP_KEYS
    # keys (1 MiB) are kept for the next scan on GIL builds: allocated for each scan,
    # blocks this size come fresh from the kernel (mmap), and their page faults cost
    # more than scanning a 10,000-flag document.
    MP_KEEP_CLASS = 17
    MP_KEEP_KEYS = 65536
    # What a key is, as Python compares the value msgspec decodes it to.
    MK_STR = 1  # text: its UTF-8 payload, whatever the header's width
    MK_BIN = 2  # bytes: its payload
    MK_POS = 3  # an integer >= 0 (int, bool, or a float with an integral value): num
    MK_NEG = 4  # an integer < 0 by its magnitude: num
    MK_FLOAT = 5  # any other float but NaN: num holds its bits
    MK_NIL = 6
    MK_RAW = 7  # an array or extension value (a tuple, a timestamp): its encoded bytes
    MK_NAN = 8  # equal to no key, itself included (as float('nan') in a dict)
    # Spans are given for a document whose containers nest at most this deep: a valid
    # flag document stays far below (free-form values stop at 100 levels), and decoding
    # the whole document at once may stop deeper (Python's recursion limit), which a
    # reader splitting it by the spans would not see.
    MP_SPAN_DEPTH = 256


cdef struct MpKey:  # a key as the scan reads it
    Py_ssize_t off  # MK_STR, MK_BIN, MK_RAW: where the compared bytes start
    Py_ssize_t n  # ... and how many
    uint64_t num
    int kind


cdef struct MpKept:  # a key kept while its map is open: 16 bytes (a hostile map of distinct
    # keys keeps one for every 5 bytes of its document)
    uint64_t at  # MK_STR, MK_BIN, MK_RAW: MpKey.off; other kinds: MpKey.num
    uint64_t n_kind  # MpKey.n << 4 | MpKey.kind


cdef struct MpSlot:  # a large map's hash table entry: 8 bytes, for fewer cache misses
    uint32_t h  # the key's hash, its low 32 bits (the lowest pick the slot)
    uint32_t i  # the key's index in MpScan.keys, plus one; 0: empty


cdef struct MpFrame:
    Py_ssize_t start  # offset of the container's header
    uint64_t left  # items still to read (a map's keys and values both count)
    bint is_map
    Py_ssize_t key_base  # index of the map's first key in MpScan.keys
    MpSlot* index  # a large map's hash table
    Py_ssize_t mask  # the table's size - 1 (0: not indexed)
    Py_ssize_t used
    int size_class  # log2 of the table's size


cdef struct MpSpans:  # where a document's members are (msgpack_spans)
    int64_t* at[3]  # per section (0: top-level members but these two, 1: flags,
    # 2: segments) four offsets a member: key start, key end, value start, value end
    Py_ssize_t n[3]  # offsets used
    Py_ssize_t cap[3]
    bint present[3]  # the document has a "flags" ("segments") member
    bint ok  # nothing unexpected so far
    int section  # the section of the top-level member being read
    int open  # the section of the map open at depth 2 (0: none followed)
    Py_ssize_t key_start  # the member being read: its key's offset


cdef struct MpScan:
    const unsigned char* p
    MpKept* keys  # the keys of every open map, the innermost last
    Py_ssize_t nkeys
    Py_ssize_t cap
    MpFrame* frames  # MP_SCAN_DEPTH + 1 of them
    MpSlot* spare[MP_KEEP_CLASS + 1]  # a free table of each size, for the next map


# The buffers kept between scans (GIL builds: one scan at a time uses them, which
# _mp_kept_busy marks, set and cleared with the GIL held; a scan that starts while
# another has them, the GIL released, allocates and frees its own, as every scan on a
# free-threaded build does).
cdef extern from *:
    """
    #ifdef Py_GIL_DISABLED
    #define CFGCORE_SCAN_KEEP 0
    #else
    #define CFGCORE_SCAN_KEEP 1
    #endif
    """
    bint CFGCORE_SCAN_KEEP

cdef MpScan _mp_kept  # zeroed at module load: nothing kept yet


cdef MpSlot* _mp_table_new(MpScan* s, int size_class) noexcept nogil:
    cdef MpSlot* table
    cdef Py_ssize_t j, size = (<Py_ssize_t>1) << size_class
    if size_class <= MP_KEEP_CLASS and s.spare[size_class] != NULL:
        table = s.spare[size_class]
        s.spare[size_class] = NULL
    else:
        table = <MpSlot*>malloc(size * sizeof(MpSlot))
        if table == NULL:
            return NULL
    memset(table, 0, size * sizeof(MpSlot))
    return table


cdef void _mp_table_drop(MpScan* s, MpSlot* table, int size_class) noexcept nogil:
    if table == NULL:
        return
    if size_class <= MP_KEEP_CLASS and s.spare[size_class] == NULL:
        s.spare[size_class] = table
    else:
        free(table)


cdef void _mp_release(MpScan* s, bint keep) noexcept nogil:
    """Free the scan's buffers, but those ``keep`` says to keep for the next scan."""
    cdef int c
    if not keep or s.cap > MP_KEEP_KEYS:
        free(s.keys)
        s.keys = NULL
        s.cap = 0
    if not keep:
        free(s.frames)
        s.frames = NULL
        for c in range(MP_KEEP_CLASS + 1):
            free(s.spare[c])
            s.spare[c] = NULL


# SipHash-1-3 with a key drawn per process: hostile keys cannot be made to collide, so
# a map of a million keys is indexed in linear time whatever they are (an unkeyed hash
# such as MurmurHash3 has known seed-independent multi-collisions). The hash decides
# only the speed, never the answer.
cdef uint64_t _MP_K0 = int.from_bytes(_os.urandom(8), "little")
cdef uint64_t _MP_K1 = int.from_bytes(_os.urandom(8), "little")


cdef inline uint64_t _rotl64(uint64_t x, int b) noexcept nogil:
    return (x << b) | (x >> (64 - b))


cdef inline void _sipround(uint64_t* v) noexcept nogil:
    v[0] += v[1]
    v[1] = _rotl64(v[1], 13)
    v[1] ^= v[0]
    v[0] = _rotl64(v[0], 32)
    v[2] += v[3]
    v[3] = _rotl64(v[3], 16)
    v[3] ^= v[2]
    v[0] += v[3]
    v[3] = _rotl64(v[3], 21)
    v[3] ^= v[0]
    v[2] += v[1]
    v[1] = _rotl64(v[1], 17)
    v[1] ^= v[2]
    v[2] = _rotl64(v[2], 32)


cdef uint64_t _siphash13(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """SipHash-1-3 (Aumasson and Bernstein) of n bytes under the process's key."""
    cdef uint64_t v[4]
    cdef uint64_t m
    cdef Py_ssize_t i, j, end = n - (n % 8)
    v[0] = _MP_K0 ^ <uint64_t>0x736f6d6570736575ULL
    v[1] = _MP_K1 ^ <uint64_t>0x646f72616e646f6dULL
    v[2] = _MP_K0 ^ <uint64_t>0x6c7967656e657261ULL
    v[3] = _MP_K1 ^ <uint64_t>0x7465646279746573ULL
    for i in range(0, end, 8):
        m = 0
        for j in range(8):
            m |= (<uint64_t>p[i + j]) << (8 * j)
        v[3] ^= m
        _sipround(v)
        v[0] ^= m
    m = (<uint64_t>n) << 56
    for j in range(n - end):
        m |= (<uint64_t>p[end + j]) << (8 * j)
    v[3] ^= m
    _sipround(v)
    v[0] ^= m
    v[2] ^= 0xff
    _sipround(v)
    _sipround(v)
    _sipround(v)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


cdef uint64_t _mp_hash(const unsigned char* p, MpKey* k) noexcept nogil:
    cdef unsigned char buf[8]
    cdef int j
    if k.kind == MK_STR or k.kind == MK_BIN or k.kind == MK_RAW:
        return _siphash13(p + k.off, k.n) ^ (<uint64_t>k.kind * <uint64_t>0x9E3779B97F4A7C15ULL)
    for j in range(8):
        buf[j] = <unsigned char>(k.num >> (8 * j))
    return _siphash13(buf, 8) ^ (<uint64_t>k.kind * <uint64_t>0x9E3779B97F4A7C15ULL)


cdef inline bint _mp_bytes_kind(int kind) noexcept nogil:
    return kind == MK_STR or kind == MK_BIN or kind == MK_RAW


cdef inline void _mp_keep(MpKept* out, MpKey* k) noexcept nogil:
    out.at = <uint64_t>k.off if _mp_bytes_kind(k.kind) else k.num
    out.n_kind = (<uint64_t>k.n << 4) | <uint64_t>k.kind


cdef inline void _mp_kept_key(MpKey* out, MpKept* kept) noexcept nogil:
    out.kind = <int>(kept.n_kind & 15)
    out.n = <Py_ssize_t>(kept.n_kind >> 4)
    if _mp_bytes_kind(out.kind):
        out.off = <Py_ssize_t>kept.at
        out.num = 0
    else:
        out.off = 0
        out.num = kept.at


cdef inline bint _mp_same(const unsigned char* p, MpKept* a, MpKey* b) noexcept nogil:
    if <int>(a.n_kind & 15) != b.kind or b.kind == MK_NAN:
        return False
    if _mp_bytes_kind(b.kind):
        return <Py_ssize_t>(a.n_kind >> 4) == b.n and memcmp(p + a.at, p + b.off, b.n) == 0
    return a.at == b.num  # MK_NIL: both 0


cdef int _mp_index_put(MpScan* s, MpFrame* f, uint64_t h, Py_ssize_t i) noexcept nogil:
    """Key i (hash h) into its map's table, grown to stay at most half full; -1: no memory."""
    cdef Py_ssize_t size, j, slot
    cdef MpSlot* table
    cdef int size_class
    if i >= <Py_ssize_t>0xFFFFFFFEU:
        return -1  # 4 billion keys: a document of 8 GiB at least; not scanned
    if (f.used + 1) * 2 > f.mask + 1:
        size_class = MP_FIRST_CLASS if f.mask == 0 else f.size_class + 1
        size = (<Py_ssize_t>1) << size_class
        table = _mp_table_new(s, size_class)
        if table == NULL:
            return -1
        if f.mask != 0:
            for j in range(f.mask + 1):
                if f.index[j].i != 0:
                    slot = <Py_ssize_t>(f.index[j].h & <uint32_t>(size - 1))
                    while table[slot].i != 0:
                        slot = (slot + 1) & (size - 1)
                    table[slot] = f.index[j]
        _mp_table_drop(s, f.index, f.size_class)
        f.index = table
        f.mask = size - 1
        f.size_class = size_class
    slot = <Py_ssize_t>(<uint32_t>h & <uint32_t>f.mask)
    while f.index[slot].i != 0:
        slot = (slot + 1) & f.mask
    f.index[slot].h = <uint32_t>h
    f.index[slot].i = <uint32_t>(i + 1)
    f.used += 1
    return 0


cdef int _mp_add_key(MpScan* s, MpFrame* f, MpKey* k) noexcept nogil:
    """Key ``k`` read in map ``f``: 1 when the map holds an equal key already (``k`` is not
    kept), 0 when it is new (kept), -1 when out of memory."""
    cdef Py_ssize_t j, slot
    cdef uint64_t h = 0
    cdef MpKept* grown
    cdef MpKey kept
    if f.mask == 0:
        for j in range(f.key_base, s.nkeys):
            if _mp_same(s.p, &s.keys[j], k):
                return 1
    elif k.kind != MK_NAN:
        h = _mp_hash(s.p, k)
        slot = <Py_ssize_t>(<uint32_t>h & <uint32_t>f.mask)
        while f.index[slot].i != 0:
            if f.index[slot].h == <uint32_t>h and _mp_same(s.p, &s.keys[f.index[slot].i - 1], k):
                return 1
            slot = (slot + 1) & f.mask
    if s.nkeys == s.cap:
        grown = <MpKept*>realloc(s.keys, 2 * s.cap * sizeof(MpKept))
        if grown == NULL:
            return -1
        s.keys = grown
        s.cap *= 2
    _mp_keep(&s.keys[s.nkeys], k)
    s.nkeys += 1
    if f.mask == 0 and s.nkeys - f.key_base > MP_SMALL_MAP:
        # the map outgrew comparing keys one by one: index the keys it has
        for j in range(f.key_base, s.nkeys):
            _mp_kept_key(&kept, &s.keys[j])
            if kept.kind != MK_NAN and _mp_index_put(s, f, _mp_hash(s.p, &kept), j) < 0:
                return -1
    elif f.mask != 0 and k.kind != MK_NAN:
        return _mp_index_put(s, f, h, s.nkeys - 1)
    return 0


cdef inline uint64_t _mp_be(const unsigned char* p, int width) noexcept nogil:
    cdef uint64_t v = 0
    cdef int i
    for i in range(width):
        v = (v << 8) | p[i]
    return v


cdef inline void _mp_number(MpKey* k, double d) noexcept nogil:
    """A float key as Python compares it: equal to the int of the same value."""
    cdef uint64_t bits
    if isnan(d):
        k.kind = MK_NAN
    elif not isinf(d) and floor(d) == d and fabs(d) < 18446744073709551616.0:
        if d >= 0:  # -0.0 included: 0
            k.kind = MK_POS
            k.num = <uint64_t>d
        else:
            k.kind = MK_NEG
            k.num = <uint64_t>(-d)
    else:
        k.kind = MK_FLOAT
        memcpy(&bits, &d, 8)
        k.num = bits


cdef inline void _mp_signed(MpKey* k, int64_t v) noexcept nogil:
    if v >= 0:
        k.kind = MK_POS
        k.num = <uint64_t>v
    else:
        k.kind = MK_NEG
        k.num = <uint64_t>0 - <uint64_t>v  # INT64_MIN's magnitude too


cdef inline bint _mp_is_map(unsigned char b) noexcept nogil:
    return (b & 0xF0) == 0x80 or b == 0xDE or b == 0xDF


cdef void _mp_span_add(MpSpans* sp, int section, Py_ssize_t value_start, Py_ssize_t end) noexcept nogil:
    cdef int64_t* grown
    cdef Py_ssize_t cap = sp.cap[section]
    if sp.n[section] + 4 > cap:
        cap = 256 if cap == 0 else 2 * cap
        grown = <int64_t*>realloc(sp.at[section], cap * sizeof(int64_t))
        if grown == NULL:
            sp.ok = False  # no spans: the reader decodes the document whole
            return
        sp.at[section] = grown
        sp.cap[section] = cap
    grown = sp.at[section] + sp.n[section]
    grown[0] = sp.key_start
    grown[1] = value_start  # (the key ends where its value starts)
    grown[2] = value_start
    grown[3] = end
    sp.n[section] += 4


cdef void _mp_span_item(
    MpSpans* sp, MpFrame* top, Py_ssize_t depth, MpKey* k, const unsigned char* p,
    Py_ssize_t start, Py_ssize_t end
) noexcept nogil:
    """Item [start, end) (key ``k``, if it is one) completed in map ``top``, open at
    ``depth`` (1: the top-level map, 2: a member's value): recorded where it is a member
    of the top-level map or of its "flags" or "segments" map."""
    cdef int section
    if not top.is_map or (depth == 2 and sp.open == 0):
        return
    if top.left % 2 == 0:  # a key
        sp.key_start = start
        if depth == 1:
            sp.section = 0
            if k.kind == MK_STR and k.n == 5 and memcmp(p + k.off, b"flags", 5) == 0:
                sp.section = 1
            elif k.kind == MK_STR and k.n == 8 and memcmp(p + k.off, b"segments", 8) == 0:
                sp.section = 2
        return
    section = sp.section if depth == 1 else sp.open
    if depth == 1 and section != 0:
        if not _mp_is_map(p[start]):
            sp.ok = False  # (the decoder names what is wrong)
        sp.present[section] = True
        return
    _mp_span_add(sp, section, start, end)


cdef void _mp_spans_free(MpSpans* sp) noexcept nogil:
    cdef int c
    for c in range(3):
        free(sp.at[c])
        sp.at[c] = NULL


cdef Py_ssize_t _mp_duplicate_at(
    MpScan* s, const unsigned char* p, Py_ssize_t n, Py_ssize_t* walked, MpSpans* sp
) noexcept nogil:
    """The offset of the first key (in document order) that repeats one before it in its
    map; -1 when none does or the bytes are not one whole MessagePack value (that
    MP_SCAN_DEPTH bounds); -2 when out of memory. ``walked``: the items (containers,
    keys, values) of a whole value, else -1. ``s``: the buffers to use (kept ones, or
    all NULL), left for the caller to release. ``sp``: where to record the members'
    spans (zeroed but for ``ok``, True), or NULL; its buffers are the caller's to free."""
    cdef MpFrame* frames
    cdef MpFrame* top
    cdef MpKey k
    cdef Py_ssize_t pos = 0, start, depth = 0, found = -1, result = -1, size, items
    cdef Py_ssize_t max_depth = MP_SCAN_DEPTH, nitems = 0
    cdef uint64_t count, bits
    cdef uint32_t b32
    cdef unsigned char b
    cdef int width, added
    cdef bint opened
    cdef float f32
    cdef double f64
    walked[0] = -1
    s.p = p
    s.nkeys = 0
    if s.keys == NULL:
        s.cap = 64
        s.keys = <MpKept*>malloc(s.cap * sizeof(MpKept))
    if s.frames == NULL:
        s.frames = <MpFrame*>malloc((MP_SCAN_DEPTH + 1) * sizeof(MpFrame))
    frames = s.frames
    if s.keys == NULL or frames == NULL:
        return -2
    while True:
        # one item: its head, then its payload (a scalar) or its container opened
        if pos >= n:
            break  # truncated
        start = pos
        b = p[pos]
        pos += 1
        nitems += 1
        k.num = 0
        k.off = 0
        k.n = 0
        opened = False
        size = -1  # payload bytes to skip, for heads that have one
        if b <= 0x7F:
            k.kind = MK_POS
            k.num = b
        elif b >= 0xE0:
            k.kind = MK_NEG
            k.num = 256 - b
        elif b <= 0x8F:
            opened, count, k.kind = True, b & 0x0F, MK_RAW
            items = 2 * <Py_ssize_t>count
        elif b <= 0x9F:
            opened, count, k.kind = True, b & 0x0F, MK_RAW
            items = <Py_ssize_t>count
        elif b <= 0xBF:
            k.kind = MK_STR
            size = b & 0x1F
        elif b == 0xC0:
            k.kind = MK_NIL
        elif b == 0xC1:
            break  # never used: not MessagePack
        elif b == 0xC2 or b == 0xC3:
            k.kind = MK_POS
            k.num = b - 0xC2
        elif b <= 0xC9 or (0xD9 <= b <= 0xDB):  # bin, ext, str: a length, then bytes
            if b <= 0xC6:
                width, k.kind = 1 << (b - 0xC4), MK_BIN
            elif b <= 0xC9:
                width, k.kind = 1 << (b - 0xC7), MK_RAW
            else:
                width, k.kind = 1 << (b - 0xD9), MK_STR
            if n - pos < width:
                break
            count = _mp_be(p + pos, width)
            pos += width
            if b >= 0xC7 and b <= 0xC9:
                if n - pos < 1:
                    break
                pos += 1  # the extension's type
            if count > <uint64_t>(n - pos):
                break
            size = <Py_ssize_t>count
        elif b == 0xCA or b == 0xCB:
            width = 4 if b == 0xCA else 8
            if n - pos < width:
                break
            bits = _mp_be(p + pos, width)
            pos += width
            if width == 4:
                b32 = <uint32_t>bits
                memcpy(&f32, &b32, 4)
                _mp_number(&k, <double>f32)
            else:
                memcpy(&f64, &bits, 8)
                _mp_number(&k, f64)
        elif b <= 0xD3:  # uint 8..64, int 8..64
            width = 1 << ((b - 0xCC) & 3)
            if n - pos < width:
                break
            bits = _mp_be(p + pos, width)
            pos += width
            if b <= 0xCF:
                k.kind = MK_POS
                k.num = bits
            elif width == 1:
                _mp_signed(&k, <int8_t>bits)
            elif width == 2:
                _mp_signed(&k, <int16_t>bits)
            elif width == 4:
                _mp_signed(&k, <int32_t>bits)
            else:
                _mp_signed(&k, <int64_t>bits)
        elif b <= 0xD8:  # fixext 1, 2, 4, 8, 16: a type, then the data
            k.kind = MK_RAW
            size = 1 + (1 << (b - 0xD4))
        else:  # 0xDC..0xDF: array 16/32, map 16/32
            width = 2 if b == 0xDC or b == 0xDE else 4
            if n - pos < width:
                break
            count = _mp_be(p + pos, width)
            pos += width
            opened, k.kind = True, MK_RAW
            if count > <uint64_t>(n - pos):
                break  # every item takes a byte at least
            items = <Py_ssize_t>count * (2 if b >= 0xDE else 1)
        if size >= 0:
            if size > n - pos:
                break
            if k.kind == MK_STR or k.kind == MK_BIN:
                k.off = pos
                k.n = size
            pos += size
        if opened:
            if items > n - pos:
                break
            if items > 0:
                if depth >= max_depth:
                    break  # deeper than the scan follows
                if sp != NULL:
                    if depth >= MP_SPAN_DEPTH:
                        sp.ok = False
                    elif depth == 1:  # a top-level member's value: followed if a section's
                        sp.open = sp.section if frames[0].is_map and frames[0].left % 2 == 1 else 0
                top = &frames[depth]
                top.start = start
                top.left = <uint64_t>items
                top.is_map = (b & 0xF0) == 0x80 or b >= 0xDE
                top.key_base = s.nkeys
                top.index = NULL
                top.mask = 0
                top.used = 0
                top.size_class = 0
                depth += 1
                continue
        # an item is complete: [start, pos). Step the containers it completes.
        added = 0
        while depth > 0:
            top = &frames[depth - 1]
            if sp != NULL and depth <= 2 and sp.ok:
                _mp_span_item(sp, top, depth, &k, p, start, pos)
            if top.is_map and top.left % 2 == 0:  # the item was a key
                if k.kind == MK_RAW:
                    k.off = start
                    k.n = pos - start
                added = _mp_add_key(s, top, &k)
                if added < 0:
                    result = -2
                    break
                if added == 1 and (found < 0 or start < found):
                    found = start
            top.left -= 1
            if top.left > 0:
                break
            # the container is complete: it is the item now
            if top.is_map:
                s.nkeys = top.key_base
                _mp_table_drop(s, top.index, top.size_class)
            start = top.start
            k.kind = MK_RAW
            k.num = 0
            depth -= 1
        if result == -2:
            break
        if depth == 0:
            result = found if pos == n else -1  # bytes after the value: not one document
            if pos == n:
                walked[0] = nitems
            break
    for start in range(depth):
        _mp_table_drop(s, frames[start].index, frames[start].size_class)
    return result


def msgpack_duplicate_at(data):
    """The byte offset of the first map key in MessagePack ``data`` (bytes-like) that
    repeats a key before it in the same map, in document order; -1 when no key repeats,
    or when ``data`` is not one whole MessagePack value (the decoder names what is
    wrong), or nests more than 1,000 containers deep.

    Keys repeat when they decode to equal Python keys: text by its UTF-8 bytes whatever
    the str header's width (fixstr, str 8, 16 and 32 spell one text four ways), bytes by
    their bytes, numbers by value (``1``, ``1.0`` and ``True`` are one key, a NaN is
    none), nil; an array or extension key by its encoded bytes.

    >>> msgpack_duplicate_at(bytes.fromhex("82a161 01 d90161 02"))
    4
    """
    return msgpack_scan(data)[0]


cdef bint _mp_kept_busy = False  # a scan uses _mp_kept (set and read with the GIL held)


cdef tuple _mp_run(object data, MpSpans* sp):
    """(:func:`msgpack_scan`'s answer) for any bytes-like ``data``, recording spans in
    ``sp`` (or NULL)."""
    cdef const unsigned char[::1] view
    cdef const unsigned char* p
    cdef Py_ssize_t n, at, walked = -1
    cdef MpScan own
    cdef MpScan* s = &own
    cdef bint kept = False
    cdef unsigned char first
    global _mp_kept_busy
    if data is None or isinstance(data, str):  # a typed memoryview would take None
        raise TypeError(f"a bytes-like object is required, not {type(data).__name__!r}")
    memset(&own, 0, sizeof(MpScan))
    if CFGCORE_SCAN_KEEP and not _mp_kept_busy:
        # the kept buffers, unless another thread's scan (the GIL released) has them
        kept = True
        _mp_kept_busy = True
        s = &_mp_kept
    try:
        if type(data) is bytes:
            # A bytes object's contents never change and it lives as long as ``data``
            # holds it: walked with the GIL released (6 to 12 ms for a 25,000-flag
            # document, while other threads serve requests).
            p = <const unsigned char*>PyBytes_AS_STRING(data)
            n = PyBytes_GET_SIZE(data)
            if n == 0:
                return -1, -1
            first = p[0]
            with nogil:
                at = _mp_duplicate_at(s, p, n, &walked, sp)
                _mp_release(s, kept)
        else:
            # Any other buffer (a bytearray, a memoryview) may change while it is read:
            # the GIL stays held, as no Python code runs meanwhile.
            view = data
            n = view.shape[0]
            if n == 0:
                return -1, -1
            first = view[0]
            at = _mp_duplicate_at(s, &view[0], n, &walked, sp)
            _mp_release(s, kept)
    finally:
        if kept:
            _mp_kept_busy = False
    if at == -2:
        raise MemoryError("msgpack_duplicate_at: out of memory")
    if sp != NULL and (at != -1 or walked < 0 or not _mp_is_map(first)):
        sp.ok = False
    return at, walked


def msgpack_scan(data):
    """(:func:`msgpack_duplicate_at`'s answer, the number of items in ``data``): every
    container, map key, value and array element counts one (what decoding it makes
    objects of), or -1 where ``data`` is not one whole MessagePack value the scan
    follows. One pass: a reader bounds what a document may make it build before
    decoding it.

    >>> msgpack_scan(bytes.fromhex("82a161 01 d90161 02"))
    (4, 5)
    """
    return _mp_run(data, NULL)


cdef object _mp_span_array(MpSpans* sp, int section):
    cdef object out = _mp_array.array("q")
    if sp.n[section]:
        out.frombytes((<char*>sp.at[section])[:sp.n[section] * sizeof(int64_t)])
    return out


def msgpack_spans(data):
    """:func:`msgpack_scan`'s two answers and the spans of a flag document's members,
    found in the same pass: ``(duplicate, items, spans)``.

    The spans are given where ``data`` is one map, with no repeated key, that the scan
    follows to its end and that nests at most 256 containers deep, and whose "flags"
    and "segments" members (where it has them) are maps; else None. They are
    ``(others, flags, segments)``: for each member, in document order, four byte
    offsets in an ``array('q')`` (key start, key end, value start, value end), of the
    top-level map's members but "flags" and "segments" (keys of any type), and of the
    members of its "flags" and "segments" maps (None where it has no such member; the
    two are str keys, of any header width).

    >>> msgpack_spans(bytes.fromhex("82a5666c616773 81a161 c0 a161 01"))
    (-1, 7, (array('q', [11, 13, 13, 14]), array('q', [8, 10, 10, 11]), None))
    """
    cdef MpSpans sp
    cdef tuple answer
    memset(&sp, 0, sizeof(MpSpans))
    sp.ok = True
    try:
        answer = _mp_run(data, &sp)
        if not sp.ok or answer[1] < 0:  # (no bytes at all: not walked)
            return answer[0], answer[1], None
        return answer[0], answer[1], (
            _mp_span_array(&sp, 0),
            _mp_span_array(&sp, 1) if sp.present[1] else None,
            _mp_span_array(&sp, 2) if sp.present[2] else None,
        )
    finally:
        _mp_spans_free(&sp)
