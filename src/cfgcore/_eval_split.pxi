# Part of cfgcore._eval (included by _eval.pyx, which holds the declarations every part
# shares): the JSON section split. A JSON flag document's flags and segments are decoded
# one at a time (cfgcore.snapshot); finding where each one's bytes are took one msgspec
# call over the whole document, which held the GIL for about 37 ms at 43,000 flags (9.8
# MB) while a reload ran on the watcher's thread. json_sections finds the same byte spans
# in one pass that holds no GIL (a 9.8 MB document takes about 15 ms), and snapshot.py
# builds the sections from them in small steps. The scan is iterative (a growing stack
# of the open containers' closing bytes), checks the JSON syntax as msgspec does (string
# escapes, UTF-16 surrogate pairs, numbers, literals) and answers None for anything else,
# leaving the document to msgspec, whose errors are the ones reported. The reference is
# cfgcore._eval_py.json_sections; both must answer the same for any bytes
# (tests/test_core_json_split.py).

from array import array as _array


cdef struct JsSpans:  # (key start, key end, value start, value end) per member
    int64_t* v
    Py_ssize_t n  # int64 values held
    Py_ssize_t cap


cdef struct JsScan:
    const unsigned char* p
    Py_ssize_t n
    unsigned char* stack  # the closing bytes of the open containers, innermost last
    Py_ssize_t cap
    JsSpans top  # the document's members
    JsSpans sections[2]  # the members of "flags" and "segments" (objects)
    int seen[2]  # 0: no such member; 1: an object; 2: another value


cdef int _js_push(JsSpans* s, Py_ssize_t ks, Py_ssize_t ke, Py_ssize_t vs, Py_ssize_t ve) noexcept nogil:
    """Append a member's spans; -1 when out of memory."""
    cdef Py_ssize_t cap
    cdef int64_t* grown
    if s.n + 4 > s.cap:
        cap = s.cap * 2 if s.cap else 1024
        grown = <int64_t*>realloc(s.v, cap * sizeof(int64_t))
        if grown == NULL:
            return -1
        s.v = grown
        s.cap = cap
    s.v[s.n] = ks
    s.v[s.n + 1] = ke
    s.v[s.n + 2] = vs
    s.v[s.n + 3] = ve
    s.n += 4
    return 0


cdef inline Py_ssize_t _js_ws(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """The offset of the first byte at or after ``i`` that is no JSON whitespace."""
    while i < n and (p[i] == 32 or p[i] == 9 or p[i] == 10 or p[i] == 13):
        i += 1
    return i


cdef inline int _js_hex4(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """The code unit the four hex digits at ``i`` spell, or -1."""
    cdef int code = 0, d
    cdef Py_ssize_t j
    if i + 4 > n:
        return -1
    for j in range(i, i + 4):
        d = p[j]
        if 48 <= d <= 57:
            d -= 48
        elif 97 <= d <= 102:
            d -= 87
        elif 65 <= d <= 70:
            d -= 55
        else:
            return -1
        code = code * 16 + d
    return code


cdef Py_ssize_t _js_string(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """``i`` just past a string's opening quote: the offset of its closing quote, or -1
    (unterminated, a control character, an unknown escape, a \\u escape of half a UTF-16
    surrogate pair; bytes from 0x80 up are taken as they are)."""
    cdef unsigned char c
    cdef int code
    while i < n:
        c = p[i]
        if c == 34:  # "
            return i
        if c < 32:
            return -1
        if c != 92:  # not a backslash
            i += 1
            continue
        if i + 1 >= n:
            return -1
        c = p[i + 1]
        if c != 117:  # not \u
            if c == 34 or c == 92 or c == 47 or c == 98 or c == 102 or c == 110 or c == 114 or c == 116:
                i += 2
                continue
            return -1
        code = _js_hex4(p, i + 2, n)
        i += 6
        if 0xDC00 <= code <= 0xDFFF or code < 0:
            return -1
        if 0xD800 <= code <= 0xDBFF:  # the high half: the low one must follow at once
            if i + 1 >= n or p[i] != 92 or p[i + 1] != 117:
                return -1
            code = _js_hex4(p, i + 2, n)
            if not 0xDC00 <= code <= 0xDFFF:
                return -1
            i += 6
    return -1


cdef Py_ssize_t _js_scalar(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """The end of the number or literal at ``i`` (the longest that JSON's grammar reads
    there), or -1."""
    cdef unsigned char c = p[i]
    if c == 116:  # true
        return i + 4 if i + 4 <= n and memcmp(p + i, b"true", 4) == 0 else -1
    if c == 102:  # false
        return i + 5 if i + 5 <= n and memcmp(p + i, b"false", 5) == 0 else -1
    if c == 110:  # null
        return i + 4 if i + 4 <= n and memcmp(p + i, b"null", 4) == 0 else -1
    if c == 45:  # -
        i += 1
    if i >= n or not 48 <= p[i] <= 57:
        return -1
    if p[i] == 48:
        i += 1
    else:
        while i < n and 48 <= p[i] <= 57:
            i += 1
    if i < n and p[i] == 46:  # .
        i += 1
        if i >= n or not 48 <= p[i] <= 57:
            return -1
        while i < n and 48 <= p[i] <= 57:
            i += 1
    if i < n and (p[i] == 101 or p[i] == 69):  # e E
        i += 1
        if i < n and (p[i] == 43 or p[i] == 45):
            i += 1
        if i >= n or not 48 <= p[i] <= 57:
            return -1
        while i < n and 48 <= p[i] <= 57:
            i += 1
    return i


cdef Py_ssize_t _js_key(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """``i`` at a member's key: the offset of its value's first byte, or -1."""
    if i >= n or p[i] != 34:
        return -1
    i = _js_string(p, i + 1, n)
    if i < 0:
        return -1
    i = _js_ws(p, i + 1, n)
    if i >= n or p[i] != 58:  # :
        return -1
    return _js_ws(p, i + 1, n)


cdef Py_ssize_t _js_value(JsScan* s, Py_ssize_t i) noexcept nogil:
    """``i`` at a value's first byte: the offset just past its last byte; -1 where it is
    not one whole JSON value, -2 out of memory."""
    cdef const unsigned char* p = s.p
    cdef Py_ssize_t n = s.n, depth = 0, cap
    cdef unsigned char c, close
    cdef unsigned char* grown
    while True:
        # a value starts at i
        if i >= n:
            return -1
        c = p[i]
        if c == 123 or c == 91:  # { [
            close = 125 if c == 123 else 93
            i = _js_ws(p, i + 1, n)
            if i < n and p[i] == close:
                i += 1  # empty: a whole value
            else:
                if depth == s.cap:
                    cap = s.cap * 2 if s.cap else 64
                    grown = <unsigned char*>realloc(s.stack, cap)
                    if grown == NULL:
                        return -2
                    s.stack = grown
                    s.cap = cap
                s.stack[depth] = close
                depth += 1
                if c == 123:
                    i = _js_key(p, i, n)
                    if i < 0:
                        return -1
                continue
        elif c == 34:
            i = _js_string(p, i + 1, n)
            if i < 0:
                return -1
            i += 1
        else:
            i = _js_scalar(p, i, n)
            if i < 0:
                return -1
        # a value ended at i: close the containers it ends
        while depth:
            i = _js_ws(p, i, n)
            if i >= n:
                return -1
            c = p[i]
            if c == 44:  # ,
                i = _js_ws(p, i + 1, n)
                if s.stack[depth - 1] == 125:
                    i = _js_key(p, i, n)
                    if i < 0:
                        return -1
                break
            if c != s.stack[depth - 1]:
                return -1
            depth -= 1
            i += 1
        else:
            return i


cdef Py_ssize_t _js_members(JsScan* s, Py_ssize_t i, JsSpans* out, bint top) noexcept nogil:
    """``i`` at an object's ``{``: each member's spans appended to ``out`` (the document's
    own, ``top``, with those of its "flags" and "segments" objects' members); the offset
    just past its ``}``, -1 where it is not one whole object, -2 out of memory."""
    cdef const unsigned char* p = s.p
    cdef Py_ssize_t n = s.n, ks, ke, vs, ve
    cdef int section
    i = _js_ws(p, i + 1, n)
    if i < n and p[i] == 125:
        return i + 1
    while True:
        if i >= n or p[i] != 34:
            return -1
        ks = i + 1
        ke = _js_string(p, ks, n)
        if ke < 0:
            return -1
        i = _js_ws(p, ke + 1, n)
        if i >= n or p[i] != 58:
            return -1
        vs = _js_ws(p, i + 1, n)
        if vs >= n:
            return -1
        section = -1
        if top and ke - ks == 5 and memcmp(p + ks, b"flags", 5) == 0:
            section = 0
        elif top and ke - ks == 8 and memcmp(p + ks, b"segments", 8) == 0:
            section = 1
        if section >= 0:
            if s.seen[section]:
                return -1  # written twice: not a document this split answers for
            s.seen[section] = 1 if p[vs] == 123 else 2
        if section >= 0 and p[vs] == 123:
            ve = _js_members(s, vs, &s.sections[section], False)
        else:
            ve = _js_value(s, vs)
        if ve < 0:
            return ve
        if _js_push(out, ks, ke, vs, ve) < 0:
            return -2
        i = _js_ws(p, ve, n)
        if i >= n:
            return -1
        if p[i] == 44:  # ,
            i = _js_ws(p, i + 1, n)
            continue
        if p[i] == 125:
            return i + 1
        return -1


cdef Py_ssize_t _js_document(JsScan* s) noexcept nogil:
    """0 for a document that is one JSON object (whitespace around it), -1 otherwise, -2
    out of memory."""
    cdef Py_ssize_t i = _js_ws(s.p, 0, s.n)
    if i >= s.n or s.p[i] != 123:
        return -1
    i = _js_members(s, i, &s.top, True)
    if i < 0:
        return i
    return 0 if _js_ws(s.p, i, s.n) == s.n else -1


cdef object _js_spans(JsSpans* spans):
    out = _array("q")
    if spans.n:
        out.frombytes((<char*>spans.v)[:spans.n * sizeof(int64_t)])
    return out


def json_sections(data):
    """The byte spans of a JSON flag document's members: ``(top, flags, segments)``, each
    an ``array('q')`` of (key start, key end, value start, value end) per member in
    document order, or None where ``data`` (bytes-like: UTF-8 JSON) is not one JSON
    object with whitespace around it, or names "flags" or "segments" twice. (The bytes
    of its strings are not checked to be UTF-8: a flag document is decoded first.)

    ``top`` holds the document's own members; ``flags`` and ``segments`` those of its
    "flags" and "segments" members where they are objects (None where the member is
    absent or another value; a name written with an escape is not recognised). A key span
    is the text between its quotes; a value span the bytes a ``msgspec.Raw`` of the value
    holds, first to last, without the whitespace around. The scan holds no GIL.

    >>> json_sections(b'{"flags": {"a": [1]}}')
    (array('q', [2, 7, 10, 20]), array('q', [12, 13, 16, 19]), None)
    """
    cdef const unsigned char[::1] view
    cdef JsScan s
    cdef Py_ssize_t found
    if data is None or isinstance(data, str):  # a typed memoryview would take None
        raise TypeError(f"a bytes-like object is required, not {type(data).__name__!r}")
    view = data
    if view.shape[0] == 0:
        return None
    memset(&s, 0, sizeof(JsScan))
    s.p = &view[0]
    s.n = view.shape[0]
    try:
        with nogil:
            found = _js_document(&s)
        if found == -2:
            raise MemoryError("json_sections: out of memory")
        if found < 0:
            return None
        return (
            _js_spans(&s.top),
            _js_spans(&s.sections[0]) if s.seen[0] == 1 else None,
            _js_spans(&s.sections[1]) if s.seen[1] == 1 else None,
        )
    finally:
        free(s.stack)
        free(s.top.v)
        free(s.sections[0].v)
        free(s.sections[1].v)
