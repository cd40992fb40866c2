# The atomic write's system calls in one C call without the GIL (cfgcore/_atomic.pyx).

OK: int
LSTAT: int
CREATE: int
FCHMOD: int
WRITE: int
FSTAT: int
FSYNC: int
CLOSE: int
RENAME: int
DIR_OPEN: int
DIR_FSYNC: int
DIR_CLOSE: int

def replace(
    target: bytes, directory: bytes, tmp: bytes, data: bytes, mode: int, /
) -> tuple[int, int]: ...
def write_new(tmp: bytes, target: bytes, data: bytes, perm: int, /) -> tuple[int, int]: ...
