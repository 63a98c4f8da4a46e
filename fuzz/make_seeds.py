#!/usr/bin/env python3
"""Writes the committed starting inputs of the fuzz targets to seeds/<target>/.

Run from anywhere: python3 fuzz/make_seeds.py. The bincode seeds are written
by hand in bincode 2's standard (varint) serde encoding of the types in
src/lib.rs; a seed that is slightly off still gives the fuzzer structure.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    folder = os.path.join(HERE, "seeds", target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# --- cookie_header: selector byte (bit 0: signed layer), then header lines.
cookies = {
    "plain": "session=$ID",
    "plain_among_others": "a=b; session=$ID; c=d",
    "plain_twice_same": "session=$ID; session=$ID",
    "plain_and_junk": "session=junk; session=$ID",
    "quoted": 'session="$ID"',
    "two_headers": "session=$ID\nx=y",
    "spaces": "  session = $ID ;",
    "raw": "session=$RAW",
    "empty": "session=",
    "long": "session=" + "A" * 200,
    "many": "; ".join(f"c{i}=v{i}" for i in range(200)) + "; session=$ID",
}
for name, text in cookies.items():
    write("cookie_header", "plain_" + name, b"\x00" + text.encode())
    write("cookie_header", "signed_" + name, b"\x01" + text.encode())
write("cookie_header", "signed_rotated", b"\x01session=$ROT")
write("cookie_header", "signed_raw_refused", b"\x01session=$RAW")
write("cookie_header", "signed_ambiguous", b"\x01session=$ID; session=$ROT")


# --- bincode 2, standard config (varint integers), serde mode.
def varint(n):
    if n < 251:
        return bytes([n])
    if n < 2**16:
        return b"\xfb" + struct.pack("<H", n)
    if n < 2**32:
        return b"\xfc" + struct.pack("<I", n)
    if n < 2**64:
        return b"\xfd" + struct.pack("<Q", n)
    return b"\xfe" + n.to_bytes(16, "little")


def zigzag(n):
    return varint(2 * n if n >= 0 else -2 * n - 1)


def bstr(s):
    b = s.encode()
    return varint(len(b)) + b


def bopt(x, enc):
    return b"\x00" if x is None else b"\x01" + enc(x)


def bitem(sku, qty, price, note):
    return bstr(sku) + varint(qty) + zigzag(price) + bopt(note, bstr)


def brep(user_id=5, visits=3, balance=-2, small=(7, -1, "x"), ratio=0.5, name="ada",
         flag=True, token=b"\x01\x02", items=(("b", 2, -5, None),), tags=(("k", 300),),
         kind=b"\x01" + varint(9), wide=1):
    out = bopt(user_id, varint) + varint(visits) + zigzag(balance)
    out += bytes([small[0]]) + zigzag(small[1]) + small[2].encode()
    out += struct.pack("<d", ratio) + bstr(name) + bytes([flag])
    out += varint(len(token)) + token
    out += varint(len(items)) + b"".join(bitem(*i) for i in items)
    out += varint(len(tags)) + b"".join(bstr(k) + varint(v) for k, v in tags)
    out += kind + varint(wide)
    return out


staff = b"\x02" + bstr("eve") + varint(2) + b"\x01\x02"
reps = {
    "default": brep(user_id=None, visits=0, balance=0, small=(0, 0, "\0"), ratio=0.0, name="",
                    flag=False, token=b"", items=(), tags=(), kind=b"\x00", wide=0),
    "typical": brep(),
    "big_numbers": brep(user_id=2**64 - 1, visits=2**32 - 1, balance=-(2**63), wide=2**128 - 1),
    "staff": brep(kind=staff, items=(("sku-1", 300, 12345, "gift"), ("x", 1, 0, None))),
    "unicode": brep(name="名前 ✓", small=(255, 32767, "é")),
}
for name, data in reps.items():
    write("codec_bincode", name, data)
write("codec_bincode", "huge_length", varint(2**64 - 1))
write("codec_bincode", "nested_deep", b"\x01" * 64 + b"\x00")

# --- JSON.
rep_json = {
    "user_id": 5, "visits": 3, "balance": -2, "small": [7, -1, "x"], "ratio": 0.5,
    "name": "ada", "flag": True, "token": [1, 2],
    "items": [{"sku": "b", "quantity": 2, "price_cents": -5, "note": None}],
    "tags": {"k": 300}, "kind": {"Member": 9}, "wide": 1,
}
write("codec_json", "typical", json.dumps(rep_json))
staff_json = dict(rep_json, kind={"Staff": {"name": "eve", "roles": [1, 2]}}, user_id=None)
write("codec_json", "staff", json.dumps(staff_json, indent=1))
write("codec_json", "guest", json.dumps(dict(rep_json, kind="Guest", name="\\u540d\\ud83d\\ude00")))
write("codec_json", "nested_deep", "[" * 200 + "]" * 200)
write("codec_json", "numbers", "[1e400, -0, 18446744073709551616, 1.5e-400]")

# --- stored_fields: selector byte, then the fields' bytes joined by ff 00.
# Field order: whole, items, uid, seven, kind, text.
SEP = b"\xff\x00"
bin_fields = [reps["typical"], varint(1) + bitem("b", 2, -5, None), b"\x01" + varint(9),
              bytes([7]), b"\x01" + varint(9), bstr("hello")]
json_fields = [json.dumps(rep_json).encode(), b'[{"sku":"b","quantity":2,"price_cents":-5,"note":null}]',
               b"9", b"7", b'{"Member":9}', b'"hello"']
for op in range(5):
    write("stored_fields", f"bincode_op{op}", bytes([op << 1]) + SEP.join(bin_fields))
    write("stored_fields", f"json_op{op}", bytes([(op << 1) | 1]) + SEP.join(json_fields))
write("stored_fields", "bincode_missing", b"\x00" + SEP.join([b"", b"", b"\x01\x05"]))
write("stored_fields", "json_extra_value", bytes([0x11]) + SEP.join(json_fields))
write("stored_fields", "bincode_short", bytes([0x20]) + SEP.join(bin_fields))


# --- memcache_record: version 1, created, expires, count, fields.
def record(created, expires, fields, version=1):
    out = bytes([version]) + struct.pack(">QQI", created, expires, len(fields))
    for ns, name, value in fields:
        out += struct.pack(">H", len(ns)) + ns + struct.pack(">H", len(name)) + name
        out += struct.pack(">I", len(value)) + value
    return out


write("memcache_record", "empty", record(1_700_000_000_000, 1_700_000_060_000, []))
write("memcache_record", "typical", record(1_700_000_000_000, 1_700_000_060_000, [
    (b"Counter", b"visits", b"\x05"),
    (b"cart", b"items", b"\x02\x01a\x01b"),
    (b"cart", b"uid", b""),
    (b"auth", b"user", b"\x01\x03ada"),
]))
write("memcache_record", "non_utf8_names", record(0, 2**64 - 1, [(b"\xff", b"\xfe", b"v")]))
write("memcache_record", "unknown_version", record(1, 2, [], version=2))

# --- codec_nested: selector byte (bit 0: JSON), then a nested value.
write("codec_nested", "bincode_tree", b"\x00" + b"\x00\x01" * 3 + b"\x00\x00")
write("codec_nested", "bincode_chain", b"\x00" + b"\x01" * 8 + b"\x00")
write("codec_nested", "json_tree", b"\x01" + json.dumps(
    {"label": "a", "children": [{"label": None, "children": []}]}).encode())
write("codec_nested", "json_chain", b"\x01" + b'{"next":' * 8 + b"null" + b"}" * 8)

# --- codec_limited: selector byte (bit 0: JSON), then a value.
for name, data in reps.items():
    write("codec_limited", "bincode_" + name, b"\x00" + data)
write("codec_limited", "json_typical", b"\x01" + json.dumps(rep_json).encode())
write("codec_limited", "bincode_chain", b"\x00" + b"\x01" * 200 + b"\x23")
write("codec_limited", "json_deep", b"\x01" + b'{"next":' * 100 + b"null" + b"}" * 100)

# Regressions: inputs that once failed a target (kept as found, not
# regenerated here): seeds/memcache_record/regression_field_written_twice
# (the record already held the field the harness adds; a harness bug).
