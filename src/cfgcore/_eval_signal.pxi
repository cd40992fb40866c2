# Part of cfgcore._eval (included by _eval.pyx, which holds the declarations every part
# shares): the compiled half of the SIGTERM watch in cfgcore.runtime.forks.
#
# Python runs a signal's handler on the main thread only. A SIGTERM the kernel gives to
# another thread while the main thread sleeps in C is only noted, so cfgcore watches for
# it from a thread of its own. It used to learn of the signal through
# signal.set_wakeup_fd, which is one per process: holding it made each trio.run() warn
# (and fail under -W error), and an event loop holding it first left cfgcore deaf.
#
# Here the watch holds no wake-up fd. sigterm_watch() puts a C handler of its own in
# front of the one CPython installed for SIGTERM (its C trampoline, which notes the signal
# for the main thread and writes the wake-up fd of whoever holds it): on each SIGTERM, on
# whichever thread it lands, the handler writes the signal's number to cfgcore's own pipe
# (one byte, non-blocking, async-signal-safe), then calls CPython's handler as before.
# Python code never sees the difference: signal.getsignal() still answers the Python
# handler, and whoever sets SIGTERM's handler again (signal.signal, an event loop's
# add_signal_handler for SIGTERM) replaces both, as it replaced CPython's alone before;
# the watch is then silent, as that handler decides. POSIX only (sigaction); elsewhere
# sigterm_watch() answers False and forks.py falls back on the wake-up fd.
#
# Setting the saved handler back (uvicorn's capture_signals, or
# old = signal.signal(SIGTERM, mine) ... signal.signal(SIGTERM, old)) makes cfgcore's
# Python handler SIGTERM's again, but under CPython's C handler alone: nothing calls
# ours. sigterm_rewatch() puts ours back in front then, from any thread: it holds the
# GIL from its look at the Python handler to its sigaction, and every Python-level
# change of SIGTERM's handler (signal.signal, faulthandler.register) sets the action and
# the handler in one call under the GIL, so none can come in between. It only ever
# chains to the C handler it chained to first (CPython's): any other action found (one
# a native library set without Python) is left alone.

from libc.errno cimport errno
import _signal as _signal_c  # (signal.getsignal is Python code: the GIL could change hands)


cdef extern from *:
    """
    #if defined(_WIN32)
    static int cfg_term_watch(int fd) { (void)fd; return 0; }
    static int cfg_term_chained(void) { return 0; }
    static int cfg_term_fd_now(void) { return -1; }
    static void cfg_term_set_fd(int fd) { (void)fd; }
    static int cfg_term_rewatch(int fd) { (void)fd; return 0; }
    #else
    #include <errno.h>
    #include <signal.h>
    #include <unistd.h>

    /* The pipe's write end (-1: write nothing) and the action chained to. next is
       written only while this handler is not installed, before sigaction installs it. */
    static volatile sig_atomic_t cfg_term_fd = -1;
    static struct sigaction cfg_term_next;
    /* The C handler chained to first (CPython's), the only one chained to again. */
    static void *cfg_term_python = NULL;

    static void *cfg_handler_of(const struct sigaction *act) {
        return (act->sa_flags & SA_SIGINFO) ? (void *)act->sa_sigaction
                                            : (void *)act->sa_handler;
    }

    static void cfg_on_term(int signum, siginfo_t *info, void *uctx) {
        int saved = errno;
        int fd = (int)cfg_term_fd;
        if (fd >= 0) {
            unsigned char b = (unsigned char)signum;
            ssize_t n = write(fd, &b, 1); /* a full pipe drops it: one byte is enough */
            (void)n;
        }
        errno = saved;
        if (cfg_term_next.sa_flags & SA_SIGINFO) {
            if (cfg_term_next.sa_sigaction != NULL)
                cfg_term_next.sa_sigaction(signum, info, uctx);
        } else if (cfg_term_next.sa_handler != SIG_DFL && cfg_term_next.sa_handler != SIG_IGN
                   && cfg_term_next.sa_handler != NULL) {
            cfg_term_next.sa_handler(signum);
        }
        errno = saved;
    }

    static int cfg_is_ours(const struct sigaction *act) {
        return (act->sa_flags & SA_SIGINFO) && act->sa_sigaction == cfg_on_term;
    }

    static int cfg_term_chained(void) {
        struct sigaction cur;
        if (sigaction(SIGTERM, NULL, &cur) != 0)
            return 0;
        return cfg_is_ours(&cur);
    }

    static int cfg_term_fd_now(void) { return (int)cfg_term_fd; }

    static void cfg_term_set_fd(int fd) { cfg_term_fd = fd; }

    /* 1: SIGTERM's handler is ours, writing fd. 0: nothing to chain to (the default
       action or ignored: not CPython's handler). -1: sigaction failed (errno). */
    static int cfg_term_watch(int fd) {
        struct sigaction cur, mine;
        if (sigaction(SIGTERM, NULL, &cur) != 0)
            return -1;
        if (cfg_is_ours(&cur)) {
            cfg_term_fd = fd;
            return 1;
        }
        if (cur.sa_flags & SA_SIGINFO) {
            if (cur.sa_sigaction == NULL)
                return 0;
        } else if (cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN
                   || cur.sa_handler == NULL) {
            return 0;
        }
        cfg_term_next = cur;
        if (cfg_term_python == NULL)
            cfg_term_python = cfg_handler_of(&cur);
        cfg_term_fd = fd;
        mine = cur; /* CPython's mask and flags (SA_ONSTACK, no SA_RESTART: PEP 475) */
        mine.sa_flags |= SA_SIGINFO;
        mine.sa_sigaction = cfg_on_term;
        if (sigaction(SIGTERM, &mine, NULL) != 0) {
            int saved = errno;
            cfg_term_fd = -1;
            errno = saved;
            return -1;
        }
        return 1;
    }

    /* As cfg_term_watch, once CPython's C handler has replaced ours (its Python handler
       set again): 1: ours again (or still), writing fd. 0: left alone (never chained,
       or an action other than the one first chained to). -1: sigaction failed. */
    static int cfg_term_rewatch(int fd) {
        struct sigaction cur;
        if (sigaction(SIGTERM, NULL, &cur) != 0)
            return -1;
        if (cfg_is_ours(&cur)) {
            cfg_term_fd = fd;
            return 1;
        }
        if (cfg_term_python == NULL || cfg_handler_of(&cur) != cfg_term_python)
            return 0;
        return cfg_term_watch(fd);
    }
    #endif
    """
    int cfg_term_watch(int fd)
    int cfg_term_chained()
    int cfg_term_fd_now()
    void cfg_term_set_fd(int fd)
    int cfg_term_rewatch(int fd)


def sigterm_watch(int fd):
    """Write SIGTERM's number to ``fd`` (a pipe's non-blocking write end) each time the
    process takes SIGTERM, on whichever thread, before CPython's own handler runs: True
    once SIGTERM's C handler is cfgcore's (installed now, or already and told the new
    fd), False where it cannot be (no C handler to chain to: SIGTERM's action is the
    default or ignored; or not POSIX). OSError when sigaction fails."""
    cdef int done = cfg_term_watch(fd)
    if done < 0:
        raise OSError(errno, "sigaction(SIGTERM) failed")
    return done == 1


def sigterm_rewatch(int fd, handler):
    """Put cfgcore's C handler back in front of CPython's, writing to ``fd``, while
    SIGTERM's Python handler is ``handler`` (cfgcore's) but its C handler is CPython's
    alone (the Python handler was set again): True once SIGTERM's C handler is
    cfgcore's, False where it is left alone (another Python handler; an action other
    than CPython's; never chained). Callable from any thread: the GIL is held
    throughout (see the top of this file). OSError when sigaction fails."""
    cdef int done
    if _signal_c.getsignal(_signal_c.SIGTERM) is not handler:
        return False
    done = cfg_term_rewatch(fd)
    if done < 0:
        raise OSError(errno, "sigaction(SIGTERM) failed")
    return done == 1


def sigterm_watch_fd():
    """The fd SIGTERM's handler writes to now (-1: none)."""
    return cfg_term_fd_now()


def sigterm_unwatch():
    """Write nothing any more (a forked child, before it closes its parent's pipe). The
    handler stays in front of CPython's, harmless, until someone sets SIGTERM's again."""
    cfg_term_set_fd(-1)


def sigterm_chained():
    """Whether SIGTERM's C handler is cfgcore's now (signal.signal replaces it)."""
    return cfg_term_chained() == 1
