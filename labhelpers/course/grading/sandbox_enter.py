"""The first program inside a rerun's namespaces: hide the instructor's folders, drop root, run the command.

``python -I -S sandbox_enter.py CONFIG.json COMMAND ...`` runs as root inside ``unshare --mount --mount-proc
--pid --net --ipc`` (see :mod:`labhelpers.course.grading.rerun`, which writes CONFIG). It only uses the
standard library, because the folders it hides may hold this interpreter's ``labhelpers``:

1. every folder to keep (the Python installation, the read-only labhelpers copy, the submission's box) is
   bound to a staging folder on a fresh tmpfs at ``/run``;
2. every folder to hide (``/tmp``, HOME, the batch, ``--out``, the checkout...) gets an empty tmpfs on top;
3. the kept folders are moved back to their own paths (read-only except the box), and ``/`` is made read-only
   in this mount namespace;
4. it drops to the unprivileged ``uid``/``gid`` (no groups, no capabilities, no new privileges: a setuid
   program cannot give them back) and ``exec``s the command.

Any failure exits with status 97 and a line on stderr, so the run never starts half-protected.
"""

import ctypes
import json
import os
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = (
    1, 2, 4, 32, 4096, 8192, 16384, 1 << 18)
PR_SET_NO_NEW_PRIVS = 38
STAGE = "/run/.lh-keep"

_libc = ctypes.CDLL(None, use_errno=True)


def _enc(text):
    return text.encode() if text is not None else None


def _mount(source, target, fstype, flags, data=None):
    enc = _enc
    if _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def _tmpfs(path, mode):
    _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode},size=1g")


def _placeholder(path, is_dir):
    if is_dir:
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "a").close()


def setup(cfg):
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    keep = [(p, rw, os.path.isdir(p)) for p, rw in cfg["keep"] if os.path.exists(p)]
    if not os.path.isdir("/run"):
        os.mkdir("/run")
    _tmpfs("/run", "755")
    os.mkdir(STAGE)
    for i, (path, _, is_dir) in enumerate(keep):
        _placeholder(f"{STAGE}/{i}", is_dir)
        _mount(path, f"{STAGE}/{i}", None, MS_BIND | MS_REC)
    for path, mode in cfg["hide"]:
        if os.path.isdir(path) and path != "/run":
            _tmpfs(path, mode)
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    for i, (path, rw, is_dir) in enumerate(keep):
        if not os.path.exists(path):
            _placeholder(path, is_dir)  # on a tmpfs: the read-only / has the path already
        _mount(f"{STAGE}/{i}", path, None, MS_MOVE)
        _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (0 if rw else MS_RDONLY))
    for i, (_, _, is_dir) in enumerate(keep):
        (os.rmdir if is_dir else os.unlink)(f"{STAGE}/{i}")
    os.rmdir(STAGE)


def drop(uid, gid):
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError(0, "the user id did not change")


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
    command = sys.argv[2:]
    try:
        setup(cfg)
        drop(cfg["uid"], cfg["gid"])
        os.chdir(cfg["cwd"])
    except OSError as err:
        print(f"sandbox setup failed: {err}", file=sys.stderr, flush=True)
        os._exit(97)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
