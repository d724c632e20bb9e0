#!/usr/bin/env python3
"""Write a gzip-compressed newc cpio for hugerace as /init, without root.

    mkinitramfs.py INIT_BINARY OUTPUT.cpio.gz [NAME=BINARY ...]

The archive holds what the binary cannot make for itself: /dev with a /dev/console node
(char 5:1, so the kernel can open the console for init before any devtmpfs exists), the
/proc and /sys mount points, and /init. Device nodes are written as archive entries, as the
kernel's usr/gen_init_cpio lists them, so no mknod (and no root) is needed. Every field that
could vary (mtime, owner, inode numbers) is fixed, so the same binary gives the same bytes.
Each NAME=BINARY adds an executable /NAME after /init (`make detect`'s image: /init runs
/hugerace and /forkspin).
"""

import gzip
import os
import stat
import sys


def newc_entry(ino, name, mode, data=b"", rdev=(0, 0), nlink=1):
    """One newc record: the 110-byte ASCII header, the NUL-terminated name padded to 4, the
    data padded to 4."""
    name_b = name.encode() + b"\0"
    fields = [
        ino, mode, 0, 0, nlink, 0, len(data),  # ino mode uid gid nlink mtime filesize
        0, 0, rdev[0], rdev[1],               # devmajor devminor rdevmajor rdevminor
        len(name_b), 0,                       # namesize check
    ]
    hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
    out = hdr + name_b
    out += b"\0" * (-len(out) % 4)
    out += data
    out += b"\0" * (-len(out) % 4)
    return out


def build(init_bytes, extra=()):
    entries = [
        ("dev", stat.S_IFDIR | 0o755, b"", (0, 0), 2),
        ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1), 1),
        ("proc", stat.S_IFDIR | 0o555, b"", (0, 0), 2),
        ("sys", stat.S_IFDIR | 0o555, b"", (0, 0), 2),
        ("init", stat.S_IFREG | 0o755, init_bytes, (0, 0), 1),
    ]
    entries += [(name, stat.S_IFREG | 0o755, data, (0, 0), 1) for name, data in extra]
    blob = b"".join(newc_entry(i + 1, *e) for i, e in enumerate(entries))
    blob += newc_entry(0, "TRAILER!!!", 0)
    return blob


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: mkinitramfs.py INIT_BINARY OUTPUT.cpio.gz [NAME=BINARY ...]")
    init, out = sys.argv[1], sys.argv[2]

    def elf(path):
        with open(path, "rb") as f:
            data = f.read()
        if data[:4] != b"\x7fELF":
            sys.exit(f"{path}: not an ELF file")
        return data

    init_bytes = elf(init)
    extra = []
    for arg in sys.argv[3:]:
        name, sep, path = arg.partition("=")
        if not sep or not name or "/" in name or name in ("init", "dev", "proc", "sys"):
            sys.exit(f"{arg}: not NAME=BINARY with a new top-level NAME")
        extra.append((name, elf(path)))
    data = gzip.compress(build(init_bytes, extra), compresslevel=9, mtime=0)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, out)
    print(f"{out}: {len(data)} bytes (init {len(init_bytes)} bytes)")


if __name__ == "__main__":
    main()
