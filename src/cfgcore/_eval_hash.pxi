# Part of cfgcore._eval (included by _eval.pyx, which holds the declarations every part
# shares): hashing and bucketing. MurmurHash3 x86_32, the CBOR and UTF-16 encodings and
# FNV-1a the imported flags' schemes hash (flagd, GrowthBook), _scheme_bucket, and the
# Python-level scheme_bucket / murmur3_32 / bucket_of the compiler and the tests call.
# Pure C leaves: nothing here knows a snapshot; CompiledSnapshot._bucket and _hashed
# (_eval_snapshot.pxi) call them.


cdef inline uint32_t _rotl(uint32_t x, int r) noexcept nogil:
    return (x << r) | (x >> (32 - r))


cdef inline uint32_t _mm_blocks(uint32_t h, const unsigned char* data, Py_ssize_t nbytes) noexcept nogil:
    """MurmurHash3 x86_32 body over whole 4-byte blocks (nbytes % 4 == 0), from state h."""
    cdef uint32_t k
    cdef Py_ssize_t i
    for i in range(0, nbytes, 4):
        k = (<uint32_t>data[i]) | (<uint32_t>data[i + 1] << 8) | (<uint32_t>data[i + 2] << 16) | (<uint32_t>data[i + 3] << 24)
        k *= <uint32_t>0xcc9e2d51U
        k = _rotl(k, 15)
        k *= <uint32_t>0x1b873593U
        h ^= k
        h = _rotl(h, 13)
        h = h * 5 + <uint32_t>0xe6546b64U
    return h


cdef inline uint32_t _mm_finish(uint32_t h, const unsigned char* tail, Py_ssize_t ntail, Py_ssize_t total) noexcept nogil:
    """MurmurHash3 x86_32 tail (0-3 bytes) and finalisation; ``total`` is the input length."""
    cdef uint32_t k = 0
    if ntail >= 3:
        k ^= (<uint32_t>tail[2]) << 16
    if ntail >= 2:
        k ^= (<uint32_t>tail[1]) << 8
    if ntail >= 1:
        k ^= tail[0]
        k *= <uint32_t>0xcc9e2d51U
        k = _rotl(k, 15)
        k *= <uint32_t>0x1b873593U
        h ^= k
    h ^= <uint32_t>total
    h ^= h >> 16
    h *= <uint32_t>0x85ebca6bU
    h ^= h >> 13
    h *= <uint32_t>0xc2b2ae35U
    h ^= h >> 16
    return h


cdef uint32_t murmur3_x86_32(const unsigned char* data, Py_ssize_t n, uint32_t seed) noexcept nogil:
    """MurmurHash3 x86_32 (Austin Appleby's public-domain reference), byte-order independent."""
    cdef Py_ssize_t end = n - (n % 4)
    return _mm_finish(_mm_blocks(seed, data, end), data + end, n % 4, n)


cdef inline int _cbor_head(unsigned char* out, int major, uint64_t n) noexcept nogil:
    """RFC 8949 section 4.2.1: the shortest head holding ``n``; returns its length."""
    cdef int size, i
    if n < 24:
        out[0] = <unsigned char>((major << 5) | n)
        return 1
    if n < 0x100:
        out[0] = <unsigned char>((major << 5) | 24)
        size = 1
    elif n < 0x10000:
        out[0] = <unsigned char>((major << 5) | 25)
        size = 2
    elif n < <uint64_t>0x100000000ULL:
        out[0] = <unsigned char>((major << 5) | 26)
        size = 4
    else:
        out[0] = <unsigned char>((major << 5) | 27)
        size = 8
    for i in range(size):
        out[size - i] = <unsigned char>(n >> (8 * i))
    return size + 1


cdef int _cbor_scalar(unsigned char* out, bint is_str, const char* bs, Py_ssize_t n) noexcept nogil:
    """CBOR of a bound value (a string, or an int given as its decimal text) into ``out``
    (room for n + 9 bytes); -1 for an int no CBOR integer holds."""
    cdef int h
    cdef uint64_t m = 0, d
    cdef Py_ssize_t i = 0
    cdef bint neg = False
    if is_str:
        h = _cbor_head(out, 3, <uint64_t>n)
        memcpy(out + h, bs, n)
        return h + <int>n
    if n > 0 and bs[0] == 45:  # '-'
        neg = True
        i = 1
    if i >= n or n - i > 20:
        return -1
    for i in range(i, n):
        d = <uint64_t>(bs[i] - 48)
        if m > (<uint64_t>0xFFFFFFFFFFFFFFFFULL - d) // 10:
            return -1  # past 2^64 - 1, as the reference evaluator decides
        m = m * 10 + d
    if neg:
        if m == 0:
            return _cbor_head(out, 0, 0)
        return _cbor_head(out, 1, m - 1)
    return _cbor_head(out, 0, m)


cdef inline int _hexval(char c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


cdef Py_ssize_t _unhex(unsigned char* out, const char* s, Py_ssize_t n) noexcept nogil:
    """Hex text to bytes (as bytes.fromhex, without spaces); -1 if it is not hex."""
    cdef Py_ssize_t i
    cdef int a, b
    if n % 2:
        return -1
    for i in range(0, n, 2):
        a = _hexval(s[i])
        b = _hexval(s[i + 1])
        if a < 0 or b < 0:
            return -1
        out[i // 2] = <unsigned char>(a * 16 + b)
    return n // 2


cdef inline uint32_t _fnv_utf16(uint32_t h, const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """FNV-1a 32 over the UTF-16 code units of UTF-8 text (GrowthBook hashes JS strings)."""
    cdef Py_ssize_t i = 0
    cdef uint32_t c
    cdef unsigned char b0
    while i < n:
        b0 = p[i]
        if b0 < 0x80 or i + 1 >= n:
            c = b0
            i += 1
        elif b0 < 0xE0:
            c = ((b0 & 0x1F) << 6) | (p[i + 1] & 0x3F)
            i += 2
        elif b0 < 0xF0 and i + 2 < n:
            c = ((b0 & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F)
            i += 3
        elif i + 3 < n:
            c = ((b0 & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12) | ((p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F)
            i += 4
        else:
            c = b0
            i += 1
        if c >= 0x10000:
            c -= 0x10000
            h = (h ^ (0xD800 + (c >> 10))) * <uint32_t>0x01000193U
            h = (h ^ (0xDC00 + (c & 0x3FF))) * <uint32_t>0x01000193U
        else:
            h = (h ^ c) * <uint32_t>0x01000193U
    return h


@cython.cdivision(True)  # unsigned operands and space >= 1: C division is exact
cdef int _scheme_bucket(int scheme, uint32_t seed, const char* salt, Py_ssize_t sl,
                        const char* suffix, Py_ssize_t xl, int space, bint is_str,
                        const char* bs, Py_ssize_t bl) noexcept nogil:
    """The bucket (0..space-1) of a bound value under an imported flag's scheme; the
    same arithmetic as ``cfgcore._eval_py.scheme_bucket`` (read that for the rules)."""
    cdef unsigned char stack[256]
    cdef unsigned char* buf = stack
    cdef Py_ssize_t need = sl + bl + xl + 20, n = 0
    cdef int w
    cdef uint32_t h
    cdef char digits[12]
    if scheme == SCHEME_GROWTHBOOK_V1 or scheme == SCHEME_GROWTHBOOK_V2:
        h = _fnv_utf16(<uint32_t>0x811C9DC5U, <const unsigned char*>salt, sl)
        h = _fnv_utf16(h, <const unsigned char*>bs, bl)
        h = _fnv_utf16(h, <const unsigned char*>suffix, xl)
        if scheme == SCHEME_GROWTHBOOK_V2:
            w = snprintf(digits, 12, "%u", h)
            h = _fnv_utf16(<uint32_t>0x811C9DC5U, <const unsigned char*>digits, w)
        return <int>(h % <uint32_t>space)
    if need > 256:
        buf = <unsigned char*>malloc(need)
        if buf == NULL:
            return -1
    if scheme == SCHEME_FLAGD_V3_CBOR:
        n = _unhex(buf, bs, bl) if is_str else -1
        if n > 0:
            h = murmur3_x86_32(buf, n, seed)
        if buf != stack:
            free(buf)
        if n <= 0:
            return -1  # not the hex text of an encoding: no value to hash
        return <int>((<uint64_t>h * <uint64_t>space) >> 32)
    if scheme == SCHEME_FLAGD_V3 and (sl or xl):
        n = _cbor_head(buf, 3, <uint64_t>(sl + bl + xl))
    elif scheme == SCHEME_FLAGD_V3_PAIR:
        buf[0] = 0x82
        n = 1 + _cbor_head(buf + 1, 3, <uint64_t>sl)
    if scheme == SCHEME_FLAGD_V3 and not (sl or xl) or scheme == SCHEME_FLAGD_V3_PAIR:
        if scheme == SCHEME_FLAGD_V3_PAIR:
            memcpy(buf + n, salt, sl)
            n += sl
        w = _cbor_scalar(buf + n, is_str, bs, bl)
        if w < 0:
            if buf != stack:
                free(buf)
            return -1
        n += w
    else:
        memcpy(buf + n, salt, sl)
        memcpy(buf + n + sl, bs, bl)
        memcpy(buf + n + sl + bl, suffix, xl)
        n += sl + bl + xl
    h = murmur3_x86_32(buf, n, seed)
    if buf != stack:
        free(buf)
    if scheme == SCHEME_MURMUR3:
        return <int>(h % <uint32_t>space)
    return <int>((<uint64_t>h * <uint64_t>space) >> 32)


def scheme_bucket(int scheme, uint32_t seed, bytes salt, bytes suffix, int space, bint is_str, bytes bk):
    """The bucket of ``bk`` (bucket text of a bound value) under an imported flag's scheme.
    ``space`` is 1..2**31-1, as the compiler writes it: ValueError below (a C division
    by zero, or a bucket out of range), OverflowError above (the C ``int``)."""
    if space < 1:
        raise ValueError(f"space must be within 1..2147483647, got {space}")
    return _scheme_bucket(scheme, seed, salt, len(salt), suffix, len(suffix), space, is_str, bk, len(bk))


def murmur3_32(data, seed=0):
    """MurmurHash3 x86_32 of ``data`` (bytes-like), unsigned. ``seed`` is an int in
    0..2**32-1: TypeError for another type (a float was truncated), OverflowError out
    of range; the reference checks the same."""
    if not isinstance(seed, int):
        raise TypeError(f"seed must be an int, not {type(seed).__name__}")
    if not 0 <= seed <= 0xFFFFFFFF:
        raise OverflowError(f"seed out of range for a uint32: {seed}")
    if data is None or isinstance(data, str):  # a typed memoryview would take None
        raise TypeError(f"a bytes-like object is required, not {type(data).__name__!r}")
    return _murmur3_view(data, <uint32_t>seed)


cdef object _murmur3_view(data, uint32_t seed):
    # [::1]: one contiguous run of bytes (the hash reads them from &view[0]); a strided
    # view (memoryview(b)[::2]) is refused, as the reference refuses it.
    cdef const unsigned char[::1] view = data
    if view.shape[0] == 0:
        return murmur3_x86_32(NULL, 0, seed)
    return murmur3_x86_32(&view[0], view.shape[0], seed)


def bucket_of(str salt not None, str value not None):
    """The bucket (0..99999) of ``value`` for a flag salted with ``salt``; both str."""
    return murmur3_32(f"{salt}:{value}".encode()) % BUCKETS
