#!/usr/bin/env python3
"""Which b-trees a SQLite store's commits write: pages per commit, by table and index.

    bench/wal-pages.py PATH/TO/vpcep.db [COMMITS]

Run it while `vpcep serve` is under a write load (e.g. `vpcep-bench --url ... --scenarios
create-service`): it copies the database and its WAL (the server's files are only read),
parses the WAL's frames into commits (a frame with a database size ends one), and maps each
frame's page number to the b-tree holding that page (`dbstat`, on the copy opened with its
WAL). It prints the mean frames per commit over the last COMMITS commits (default 300) and
their split by b-tree: every frame is a 4 KiB page write and part of the sync that acknowledges
the commit. Needs Python's sqlite3 with the dbstat table (Debian's has it).
"""
import collections
import shutil
import sqlite3
import struct
import sys
import tempfile
from pathlib import Path


def commits_of(wal: bytes):
    """Page numbers of each commit in the WAL's current generation (its header's salts)."""
    if len(wal) < 32:
        return []
    page_size = struct.unpack(">I", wal[8:12])[0]
    salts = struct.unpack(">II", wal[16:24])
    off, commits, cur = 32, [], []
    while off + 24 + page_size <= len(wal):
        pgno, db_size, s1, s2 = struct.unpack(">IIII", wal[off:off + 16])
        if (s1, s2) != salts:
            break
        cur.append(pgno)
        if db_size:
            commits.append(cur)
            cur = []
        off += 24 + page_size
    return commits


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    db = Path(sys.argv[1])
    last = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    for f in (db, Path(f"{db}-wal")):
        if not f.is_file():
            sys.exit(f"{f}: no such file (give the SQLite file a running `vpcep serve` uses)")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.db"
        # The WAL first: frames appended after this copy are simply not seen.
        shutil.copy(f"{db}-wal", f"{copy}-wal")
        shutil.copy(db, copy)
        commits = commits_of(Path(f"{copy}-wal").read_bytes())[-last:]
        if not commits:
            sys.exit("no committed frames in the WAL (was it just checkpointed and restarted?)")
        conn = sqlite3.connect(copy)
        owner = {pg: name for name, pg in conn.execute("SELECT name, pageno FROM dbstat")}
        conn.close()
    by_tree = collections.Counter(owner.get(p, "(free or new page)") for c in commits for p in c)
    n = len(commits)
    print(f"{n} commits, {sum(map(len, commits)) / n:.1f} frames (pages) per commit")
    for name, count in by_tree.most_common():
        print(f"  {name:<48} {count / n:6.2f}")


if __name__ == "__main__":
    main()
