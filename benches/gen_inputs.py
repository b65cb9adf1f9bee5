#!/usr/bin/env python3
"""Generates the comparison inputs deterministically.

pg_day1.sql / pg_day2.sql  pg_dump-like plain SQL: COPY blocks of account rows and
                           history rows; day 2 rewrites PCT% of account rows in place
                           (scattered) and appends history rows, as a day of traffic does.
rdb_day1.bin / rdb_day2.bin  Redis-RDB-like binary: length-prefixed keys and values
                           (text, integers, binary blobs); day 2 changes PCT% of values.
tree/                      many small and medium files in nested directories.
"""
import os
import random
import struct
import sys

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def account_row(r, i, salt):
    name = f"{r.choice(WORDS)} {r.choice(WORDS)}"
    email = f"{r.choice(WORDS)}.{i}@example.{r.choice(('com', 'org', 'net'))}"
    balance = r.randint(-100000, 10000000) + salt
    created = f"20{r.randint(10, 26):02d}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} {r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}"
    note = " ".join(r.choice(WORDS) for _ in range(r.randint(2, 12)))
    return f"{i}\t{name}\t{email}\t{balance}\t{created}\t{note}\n"


def pg(path, size, day2, pct, seed=1):
    r = random.Random(seed)
    change = random.Random(seed + 1000)
    rows = []
    total = 0
    i = 0
    while total < size * 0.85:
        i += 1
        row = account_row(r, i, 0)
        if day2 and change.random() < pct / 100:
            row = account_row(random.Random(i * 7919), i, 17)
        rows.append(row)
        total += len(row)
    hist = []
    h = random.Random(seed + 7)
    n_hist = int(size * 0.15 / 60) + (int(size * 0.01 / 60) if day2 else 0)
    for j in range(n_hist):
        hist.append(f"{j}\t{h.randint(1, i)}\t{h.randint(-5000, 5000)}\t2026-11-{h.randint(1, 28):02d} 12:00:00\t{h.choice(WORDS)}\n")
    with open(path, "w") as f:
        f.write("--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\n\n")
        f.write("CREATE TABLE public.accounts (id integer, name text, email text, balance bigint, created timestamp, note text);\n\n")
        f.write("COPY public.accounts (id, name, email, balance, created, note) FROM stdin;\n")
        f.writelines(rows)
        f.write("\\.\n\n\nCOPY public.history (id, account, delta, at, memo) FROM stdin;\n")
        f.writelines(hist)
        f.write("\\.\n\n--\n-- PostgreSQL database dump complete\n--\n")


def rdb(path, size, day2, pct, seed=2):
    r = random.Random(seed)
    change = random.Random(seed + 1000)
    out = bytearray(b"REDIS0011\xfa\tredis-ver\x057.0.15")
    i = 0
    while len(out) < size:
        i += 1
        key = f"user:{i}:{r.choice(WORDS)}".encode()
        kind = r.random()
        if kind < 0.5:
            val = " ".join(r.choice(WORDS) for _ in range(r.randint(3, 30))).encode()
        elif kind < 0.8:
            val = struct.pack("<q", r.randint(-2**40, 2**40)) * r.randint(1, 8)
        else:
            val = r.randbytes(r.randint(16, 400))
        if day2 and change.random() < pct / 100:
            val = random.Random(i).randbytes(len(val))
        out += b"\x00" + struct.pack("<I", len(key)) + key + struct.pack("<I", len(val)) + val
    out += b"\xff" + r.randbytes(8)
    with open(path, "wb") as f:
        f.write(out)


def tree(root, size, seed=3):
    r = random.Random(seed)
    total = 0
    n = 0
    while total < size:
        d = os.path.join(root, f"d{n % 50:02d}", f"s{(n // 50) % 20:02d}")
        os.makedirs(d, exist_ok=True)
        # Mostly small files (log-uniform 100 B .. 80 KB, mean ~12 KB), 0.1% medium (1-5 MB).
        length = int(10 ** r.uniform(2.0, 4.9)) if r.random() < 0.999 else r.randint(1 << 20, 5 << 20)
        if r.random() < 0.6:
            body = "".join(account_row(r, n * 100 + k, 0) for k in range(max(1, length // 90))).encode()[:length]
        else:
            body = r.randbytes(length)
        with open(os.path.join(d, f"f{n:06d}.dat"), "wb") as f:
            f.write(body)
        total += len(body)
        n += 1
    return n


if __name__ == "__main__":
    out, mb, pct = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    size = mb * 1000 * 1000
    os.makedirs(out, exist_ok=True)
    pg(os.path.join(out, "pg_day1.sql"), size, False, pct)
    pg(os.path.join(out, "pg_day2.sql"), size, True, pct)
    rdb(os.path.join(out, "rdb_day1.bin"), size, False, pct)
    rdb(os.path.join(out, "rdb_day2.bin"), size, True, pct)
    files = tree(os.path.join(out, "tree"), size)
    print(f"inputs in {out}: {mb} MB each, {files} files in tree/")
