#!/usr/bin/env python3
"""Test vectors of the hocvu sync protocol, computed from docs/protocol.md alone.

This script is an independent implementation of the change codec, the batch header, the batch id,
the batch signature and the signed home-feed body, written from the specification (not from the
Swift sources). It prints the "Test vectors" section of docs/protocol.md; the Swift test
Tests/WireTests/ProtocolVectorTests.swift checks the project's own code against the same hex.

    pip install pynacl
    python3 ops/protocol-vectors.py                 # print the vectors (Markdown, as in the doc)
    python3 ops/protocol-vectors.py --check docs/protocol.md   # exit 1 if the doc's vectors differ

Only PyNaCl (libsodium's Ed25519) and the standard library (hashlib's BLAKE2b) are used.
"""

import hashlib
import re
import sys

from nacl.signing import SigningKey

# --- Primitive encodings (docs/protocol.md, "Conventions" and "Change codec") -------------------

MAX_TEXT = 1024
MAX_ANSWERS = 1000
MAX_CHANGES = 20_000
MAX_SEQUENCE = (1 << 53) - 1
U64 = (1 << 64) - 1


def varint(n: int) -> bytes:
    """Unsigned LEB128, shortest form, at most 10 bytes."""
    assert 0 <= n <= U64
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def zigzag(n: int) -> bytes:
    """A signed 64-bit integer, zig-zag mapped, then as a varint."""
    assert -(1 << 63) <= n < (1 << 63)
    return varint(((n << 1) ^ (n >> 63)) & U64)


def fixed64(n: int) -> bytes:
    assert 0 <= n <= U64
    return n.to_bytes(8, "big")


def text(s: str) -> bytes:
    b = s.encode("utf-8")
    assert len(b) <= MAX_TEXT
    return varint(len(b)) + b


HEX = set(b"0123456789abcdef")


def compact_id(s: str) -> bytes:
    """Tag 1: 32 lower-case hex digits → 16 bytes; tag 2: lower-case 8-4-4-4-12 UUID → 16 bytes;
    tag 0: anything else, as text."""
    b = s.encode("utf-8")
    if len(b) == 32 and all(c in HEX for c in b):
        return b"\x01" + bytes.fromhex(s)
    if len(b) == 36 and all(b[i] == ord("-") for i in (8, 13, 18, 23)):
        digits = bytes(c for i, c in enumerate(b) if i not in (8, 13, 18, 23))
        if all(c in HEX for c in digits):
            return b"\x02" + bytes.fromhex(digits.decode())
    return b"\x00" + text(s)


def hlc(milliseconds: int, counter: int) -> bytes:
    assert 0 <= milliseconds < (1 << 48) and 0 <= counter < (1 << 16)
    return fixed64(milliseconds << 16 | counter)


def blake2b(data: bytes, size: int = 32) -> bytes:
    return hashlib.blake2b(data, digest_size=size).digest()


# --- Identifiers (docs/data-model.md, "Identifiers") --------------------------------------------

def learner_id(national_id: str) -> str:
    return blake2b(b"hocvu/learner/v1\x00" + national_id.encode(), 16).hex()


def certificate_id(learner: str, course: str) -> str:
    return blake2b(b"hocvu/certificate/v1\x00" + learner.encode() + b"\x00" + course.encode(), 16).hex()


# --- Records (docs/protocol.md, "Change codec") ------------------------------------------------

KIND_LEARNER, KIND_ENROLLMENT, KIND_PROGRESS, KIND_ATTEMPT, KIND_CERTIFICATE = 1, 2, 3, 4, 5
ROLES = {"na_deputy", "provincial_council_delegate", "commune_council_delegate", "civil_servant", "other"}


def learner(stamp, learner_id_, national_id, full_name=None, role=None, unit=None, home_commune=None):
    present = 0
    tail = b""
    if full_name is not None:
        present |= 1
        tail += text(full_name)
    if role is not None:
        assert role in ROLES
        present |= 2
        tail += text(role)
    if unit is not None:
        present |= 4
        tail += text(unit)
    if home_commune is not None:
        assert 0 <= home_commune <= 2**31 - 1
        present |= 8
        tail += zigzag(home_commune)
    return stamp + bytes([KIND_LEARNER]) + compact_id(learner_id_) + text(national_id) + bytes([present]) + tail


def enrollment(stamp, learner_id_, course, length):
    return stamp + bytes([KIND_ENROLLMENT]) + compact_id(learner_id_) + text(course) + varint(length)


def progress(stamp, learner_id_, lesson, percent, completed_at=None):
    return (stamp + bytes([KIND_PROGRESS]) + compact_id(learner_id_) + text(lesson) + zigzag(percent)
            + zigzag(-1 if completed_at is None else completed_at))


def attempt(stamp, attempt_id, learner_id_, quiz, answers, score, max_score, started_at, finished_at):
    assert len(answers) <= MAX_ANSWERS and all(-1 <= a <= 2**31 - 1 for a in answers)
    return (stamp + bytes([KIND_ATTEMPT]) + compact_id(attempt_id) + compact_id(learner_id_) + text(quiz)
            + varint(len(answers)) + b"".join(zigzag(a) for a in answers)
            + zigzag(score) + zigzag(max_score) + zigzag(started_at) + zigzag(finished_at))


def certificate(stamp, certificate_id_, learner_id_, course, issued_at, revoked_at=None):
    return (stamp + bytes([KIND_CERTIFICATE]) + compact_id(certificate_id_) + compact_id(learner_id_) + text(course)
            + zigzag(issued_at) + zigzag(-1 if revoked_at is None else revoked_at))


def body(changes):
    assert 1 <= len(changes) <= MAX_CHANGES
    return varint(len(changes)) + b"".join(changes)


# --- Batches (docs/protocol.md, "Batches") -----------------------------------------------------

BATCH_DOMAIN = b"hocvu/batch/v1\x00"


def batch_header(node: bytes, epoch: int, first_seq: int, last_seq: int, previous_id: bytes, body_: bytes) -> bytes:
    assert len(node) == 32 and len(previous_id) == 32
    assert 1 <= first_seq <= last_seq <= MAX_SEQUENCE
    header = (BATCH_DOMAIN + node + fixed64(epoch) + fixed64(first_seq) + fixed64(last_seq) + previous_id
              + blake2b(body_))
    assert len(header) == 135
    return header


# --- Home feed (docs/protocol.md, "Home feed") -------------------------------------------------

HOME_FEED_DOMAIN = b"hocvu home feed v1\n"


def pb_varint_field(number: int, value: int) -> bytes:
    return b"" if value == 0 else varint(number << 3 | 0) + varint(value)


def pb_bytes_field(number: int, value: bytes) -> bytes:
    return b"" if not value else varint(number << 3 | 2) + varint(len(value)) + value


def home_feed_body(commune: int, first_seq: int, entries) -> bytes:
    out = pb_varint_field(1, commune) + pb_varint_field(2, first_seq)
    for node, change in entries:
        entry = pb_bytes_field(1, node) + pb_bytes_field(2, change)
        out += pb_bytes_field(3, entry)
    return out


# --- The fixed inputs (docs/protocol.md, "Test vectors") ---------------------------------------

SITE_SEED = bytes(range(0x01, 0x21))   # 01 02 … 20
HUB_SEED = bytes(range(0x21, 0x41))    # 21 22 … 40
EPOCH = 0xFEDCBA9876543210
T = 1_767_225_600_000                  # 2026-01-01T00:00:00Z in Unix milliseconds

NATIONAL_ID = "001234567890"
COURSE = "ksn-101"
LID = learner_id(NATIONAL_ID)
CERT = certificate_id(LID, COURSE)
ATTEMPT_ID = "019b76da-b7a0-7abc-8def-0123456789ab"  # a UUIDv7 of T + 4 s

CHANGES = [
    learner(hlc(T, 0), LID, NATIONAL_ID, full_name="Nguyễn Văn A", role="commune_council_delegate", home_commune=70),
    learner(hlc(T, 1), "Legacy-7", "001234567891"),
    enrollment(hlc(T + 1_000, 0), LID, COURSE, 1),
    progress(hlc(T + 2_000, 0), LID, "ksn-101-l1", 100, completed_at=T + 1_900),
    progress(hlc(T + 3_000, 0), LID, "ksn-101-l2", 40),
    attempt(hlc(T + 4_000, 0), ATTEMPT_ID, LID, "ksn-101-quiz", [0, 2, -1, 3], 2, 4, T + 3_500, T + 3_900),
    certificate(hlc(T + 5_000, 0), CERT, LID, COURSE, T + 5_000),
]
SECOND = [certificate(hlc(T + 6_000, 0), CERT, LID, COURSE, T + 5_000, revoked_at=T + 6_000)]


def vectors():
    site = SigningKey(SITE_SEED)
    hub = SigningKey(HUB_SEED)
    node = bytes(site.verify_key)
    v = {}
    v["site-public-key"] = node
    v["hub-public-key"] = bytes(hub.verify_key)
    for i, c in enumerate(CHANGES):
        v[f"change-{i + 1}"] = c
    b1 = body(CHANGES)
    h1 = batch_header(node, EPOCH, 1, len(CHANGES), bytes(32), b1)
    id1 = blake2b(h1)
    v["batch-1-body"] = b1
    v["batch-1-header"] = h1
    v["batch-1-id"] = id1
    v["batch-1-signature"] = site.sign(h1).signature
    b2 = body(SECOND)
    first2 = len(CHANGES) + 1
    h2 = batch_header(node, EPOCH, first2, first2 + len(SECOND) - 1, id1, b2)
    v["batch-2-body"] = b2
    v["batch-2-header"] = h2
    v["batch-2-id"] = blake2b(h2)
    v["batch-2-signature"] = site.sign(h2).signature
    feed = home_feed_body(70, 1, [(node, body([CHANGES[3]])), (node, body([CHANGES[5]]))])
    v["home-feed-body"] = feed
    v["home-feed-signature"] = hub.sign(HOME_FEED_DOMAIN + feed).signature
    return v


def wrap(hexstr: str, width: int = 64) -> str:
    return "\n".join(hexstr[i:i + width] for i in range(0, len(hexstr), width))


def markdown(v) -> str:
    out = []
    for name, data in v.items():
        out.append(f"`{name}` ({len(data)} bytes):\n")
        out.append(f"<!-- vector: {name} -->")
        out.append("```text")
        out.append(wrap(data.hex()))
        out.append("```")
        out.append("<!-- /vector -->\n")
    return "\n".join(out).rstrip("\n") + "\n"


def doc_vectors(path: str):
    doc = open(path, encoding="utf-8").read()
    found = {}
    for m in re.finditer(r"<!-- vector: ([a-z0-9-]+) -->(.*?)<!-- /vector -->", doc, re.S):
        lines = [l for l in m.group(2).splitlines() if not l.strip().startswith("```")]
        found[m.group(1)] = bytes.fromhex("".join("".join(lines).split()))
    return found


def main(argv):
    v = vectors()
    if len(argv) == 3 and argv[1] == "--check":
        found = doc_vectors(argv[2])
        bad = [k for k in v if found.get(k) != v[k]] + [k for k in found if k not in v]
        for k in bad:
            print(f"vector {k}: the document differs from this implementation", file=sys.stderr)
        print("all vectors match" if not bad else f"{len(bad)} vector(s) differ")
        return 1 if bad else 0
    print(markdown(v), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
