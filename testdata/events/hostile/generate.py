#!/usr/bin/env python3
"""Regenerates the hostile event corpus in this directory, deterministically.

    python3 testdata/events/hostile/generate.py

writes every `NNN-short-name.json` (raw bytes: some are deliberately not
JSON, not UTF-8, or huge), `MANIFEST.tsv`, and the three context events in
`context/`. Files matching `NNN-*.json` that the table below no longer names
are deleted. Nothing depends on the clock, the locale or hash order: running
it twice gives byte-identical files.

CONTEXT. Every event in the corpus is judged on its own, against this state
(reset before each event; events are NOT meant to be applied in sequence):

  * zone `hostile-zone`, domain `hostile.example`, created by
    `context/001-hostile-snapshot.json` (id `ctx-hostile-snapshot`, seq 100),
    a zone.snapshot with four records:
        hz-a-apex  A   @    192.0.2.1
        hz-a-www   A   www  192.0.2.2
        hz-mx      MX  @    10 mx.mail-provider.example
        hz-txt     TXT @    "v=spf1 -all"
    so the zone has last_seq 100 and remembers the id ctx-hostile-snapshot;
  * zone `gone-zone`, domain `gone.example`, created by
    `context/002-gone-created.json` (id `ctx-gone-created`, seq 40) and then
    deleted by `context/003-gone-deleted.json` (id `ctx-gone-deleted`,
    seq 50), in two separate dispatcher passes: a tombstone with last_seq 50
    and both ids remembered;
  * default configuration (`Config::default()`: nameservers ns1.vps.org and
    ns2.vps.org, default TTL 3600). No other zone exists.

MANIFEST.tsv columns: file, expect, field, note.

  expect  `failed`    the event ends in spool/failed/ with a report whose
                      errors name `field`;
          `applied`   valid: applied (the zone afterwards validates and
                      renders safely);
          `replay`    skipped: its seq is not newer than the zone's;
          `duplicate` skipped: its id was already applied.
  field   for `failed`: the field an error must name. `-` means the error has
          no field (undecodable bytes, JSON syntax). Serde type errors name
          the JSON path (`record.ttl`, `zone.records[1].ttl`). A missing
          or duplicated key is named either by an error whose `field` is
          exactly that path, or by one whose `field` is the path of the
          object that holds it (none for the top level) and whose detail
          says ``missing field `leaf` `` or ``duplicate field `leaf` ``. A
          syntax error is located where the parser stopped, if anywhere.
          Validation errors use the validator's
          field names (`name`, `value`, `ttl`, `priority`, `uuid`,
          `record_type`, `domain`), attributed to the record. `-` for the
          other expectations.
  note    free text. A note starting `BUG: [tag]` marks a row whose
          expectation is the CORRECT behaviour that the code does not have
          yet: the test lists such rows as known failures instead of
          failing. The tags are the BUGS table below and README.md. `RISK:`
          marks accepted behaviour worth a decision, `VALID:` an event that
          looks hostile but is fine.

Placeholders: `@ID@` in a file is replaced by `hostile-NNN` (the event id)
and `@RID@` by `hostile-NNN-rec` (a record uuid), NNN being the file number.
"""

import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

HZ, HD = "hostile-zone", "hostile.example"
GZ, GD = "gone-zone", "gone.example"

CONTEXT = {
    "001-hostile-snapshot.json": {
        "id": "ctx-hostile-snapshot",
        "seq": 100,
        "type": "zone.snapshot",
        "zone": {
            "uuid": HZ,
            "domain": HD,
            "created_at": "2026-01-01T00:00:00Z",
            "record_count": 4,
            "records": [
                {"uuid": "hz-a-apex", "record_type": "A", "name": "@",
                 "value": "192.0.2.1", "ttl": 3600, "priority": None,
                 "created_at": "2026-01-01T00:00:00Z"},
                {"uuid": "hz-a-www", "record_type": "A", "name": "www",
                 "value": "192.0.2.2", "ttl": 3600, "priority": None,
                 "created_at": "2026-01-01T00:00:00Z"},
                {"uuid": "hz-mx", "record_type": "MX", "name": "@",
                 "value": "mx.mail-provider.example", "ttl": 3600,
                 "priority": 10, "created_at": "2026-01-01T00:00:00Z"},
                {"uuid": "hz-txt", "record_type": "TXT", "name": "@",
                 "value": "v=spf1 -all", "ttl": 3600, "priority": None,
                 "created_at": "2026-01-01T00:00:00Z"},
            ],
        },
    },
    "002-gone-created.json": {
        "id": "ctx-gone-created",
        "seq": 40,
        "type": "zone.created",
        "zone": {"uuid": GZ, "domain": GD, "created_at": "2026-01-01T00:00:00Z"},
    },
    "003-gone-deleted.json": {
        "id": "ctx-gone-deleted",
        "seq": 50,
        "type": "zone.deleted",
        "zone_uuid": GZ,
    },
}

CASES = []

# Rows whose expectation is the correct behaviour the code does not have
# (yet). Their notes start with `BUG: [tag]`; README.md explains each tag.
BUGS = {
    # Rows whose expectation the code does not meet yet, by cause. Empty:
    # every row behaves as its expectation says. (Fixed causes: text after
    # the object was ignored; syntax errors named `?`; errors inside the
    # flattened body lost their path; an integer `type` was taken as a
    # variant index; zone.created compared domains as raw strings; named's
    # own default zones were accepted.)
}
BUG_OF = {slug: tag for tag, slugs in BUGS.items() for slug in slugs}


# Well-formed events whose zone named would refuse: they are applied to the
# zone's desired state and the zone is held, the error naming `field`.
HELD = {
    "domain-conflict-new-uuid",
    "domain-conflict-spelling",
    "domain-fullwidth-dot-conflict",
    "record-updated-apex-a-to-cname",
    "cname-at-apex",
    "cname-beside-a",
    "cname-fqdn-beside-a",
    "mx-owner-underscore",
    "srv-target-underscore",
    "a-owner-underscore",
    "aaaa-owner-underscore",
}
# Zones named serves (with a warning, or whitespace the agent normalises).
SERVED = {
    "mx-null-mixed": "a null MX beside the context MX at the apex: RFC 7505 §3 says alone, but named serves it, so it is applied with a warning",
    "mx-target-in-zone-no-address": "in-zone MX target without an address: named serves it with a warning (has no address records), so it is applied",
    "srv-tabs": "tab separated: blanks between SRV fields are layout, normalised to single spaces",
    "ns-delegation-without-glue": "in-zone delegation without glue: named serves it with a warning (has no REQUIRED GLUE), so it is applied",
}


def case(slug, data, expect, field, note):
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug), slug
    if slug in HELD:
        expect = "held"
    if slug in SERVED:
        expect, field, note = "applied", "-", SERVED[slug]
    assert not note.startswith("BUG"), slug
    if slug in BUG_OF:
        note = "BUG: [%s] %s" % (BUG_OF[slug], note)
    assert expect in ("failed", "held", "applied", "replay", "duplicate"), expect
    assert expect in ("failed", "held") or field == "-", (slug, field)
    assert "\t" not in note and "\n" not in note, slug
    if isinstance(data, (dict, list)):
        data = dump(data)
    assert isinstance(data, bytes), slug
    CASES.append((slug, data, expect, field, note))


def dump(obj):
    """JSON as a producer would write it: UTF-8, one object, a newline."""
    return json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n"


def rec(rtype="A", name="n", value="192.0.2.10", **extra):
    r = {"uuid": "@RID@", "record_type": rtype, "name": name, "value": value,
         "ttl": 3600, "priority": None}
    r.update(extra)
    return r


def created(record, zone_uuid=HZ, **extra):
    e = {"id": "@ID@", "type": "record.created", "zone_uuid": zone_uuid,
         "record": record}
    e.update(extra)
    return e


def updated(record, zone_uuid=HZ, **extra):
    e = {"id": "@ID@", "type": "record.updated", "zone_uuid": zone_uuid,
         "record": record}
    e.update(extra)
    return e


def deleted_rec(record_uuid, zone_uuid=HZ, **extra):
    e = {"id": "@ID@", "type": "record.deleted", "zone_uuid": zone_uuid,
         "record_uuid": record_uuid}
    e.update(extra)
    return e


def zone_created(uuid, domain, **extra):
    e = {"id": "@ID@", "type": "zone.created",
         "zone": {"uuid": uuid, "domain": domain,
                  "created_at": "2026-02-01T00:00:00Z"}}
    e.update(extra)
    return e


def context_records():
    return json.loads(json.dumps(CONTEXT["001-hostile-snapshot.json"]["zone"]["records"]))


def snapshot(uuid=HZ, domain=HD, records=None, **extra):
    if records is None:
        records = context_records()
    e = {"id": "@ID@", "type": "zone.snapshot",
         "zone": {"uuid": uuid, "domain": domain,
                  "created_at": "2026-02-01T00:00:00Z",
                  "records": records}}
    e.update(extra)
    return e


def zone_deleted(zone_uuid, **extra):
    e = {"id": "@ID@", "type": "zone.deleted", "zone_uuid": zone_uuid}
    e.update(extra)
    return e


def raw(text):
    return text.encode("utf-8")


A_WWW_OK = dump(created(rec(name="ok", value="192.0.2.20")))

# ---------------------------------------------------------------------------
# 1. Bytes that are not one JSON object.
# ---------------------------------------------------------------------------
case("empty-file", b"", "failed", "-", "zero bytes")
case("whitespace-only", b" \n\t\r\n  ", "failed", "-", "only JSON whitespace")
case("truncated-object", A_WWW_OK[: len(A_WWW_OK) // 2], "failed", "record",
     "valid event cut in half; the syntax error is located in the member it ends in")
case("truncated-in-string", raw('{"id": "@ID@", "type": "zone.del'), "failed", "type",
     "ends inside a string; located at that field")
case("trailing-garbage", A_WWW_OK.rstrip(b"\n") + b" garbage\n", "failed", "-",
     "text after the object is ignored and the event applied")
case("two-objects-concatenated",
     A_WWW_OK.rstrip(b"\n") + dump(created(rec(name="second", value="192.0.2.21"))),
     "failed", "-",
     "two events in one file: the first is applied, the second silently lost")
case("trailing-nul", A_WWW_OK + b"\x00", "failed", "-",
     "a NUL byte after the object is ignored")
case("leading-nul", b"\x00" + A_WWW_OK, "failed", "-", "NUL before the object")
case("trailing-comma", raw('{"id": "@ID@", "type": "zone.deleted", "zone_uuid": "nope",}'),
     "failed", "-", "trailing comma")
case("nan-ttl", raw('{"id": "@ID@", "type": "record.created", "zone_uuid": "hostile-zone", '
                    '"record": {"uuid": "@RID@", "record_type": "A", "name": "n", '
                    '"value": "192.0.2.10", "ttl": NaN}}'),
     "failed", "record", "NaN is not JSON; the syntax error is located in its member")
case("infinity-ttl", raw('{"id": "@ID@", "type": "record.created", "zone_uuid": "hostile-zone", '
                         '"record": {"uuid": "@RID@", "record_type": "A", "name": "n", '
                         '"value": "192.0.2.10", "ttl": Infinity}}'),
     "failed", "record", "Infinity is not JSON")
case("line-comment", b"// an event\n" + A_WWW_OK, "failed", "-", "comments are not JSON")
case("block-comment", raw('{"id": "@ID@", /* c */ "type": "zone.deleted", "zone_uuid": "nope"}'),
     "failed", "-", "block comment between members")
case("utf8-bom", b"\xef\xbb\xbf" + A_WWW_OK, "failed", "-",
     "UTF-8 byte order mark (RFC 8259 forbids producers to add one; refusing is allowed)")
case("json-array", b"[" + A_WWW_OK.rstrip(b"\n") + b"]\n", "failed", "-",
     "an array holding a valid event")
case("json-string", b'"zone.deleted"\n', "failed", "-", "a string, not an object")
case("json-number", b"42\n", "failed", "-", "a number, not an object")
case("json-null", b"null\n", "failed", "-", "null, not an object")
case("json-true", b"true\n", "failed", "-", "a boolean, not an object")
case("single-quotes", raw("{'id': '@ID@', 'type': 'zone.deleted', 'zone_uuid': 'nope'}"),
     "failed", "-", "single-quoted strings")
case("unquoted-keys", raw('{id: "@ID@", type: "zone.deleted", zone_uuid: "nope"}'),
     "failed", "-", "unquoted keys")
case("invalid-utf8-in-id", b'{"id": "h\xff\xfe", "type": "zone.deleted", "zone_uuid": "nope"}\n',
     "failed", "-", "bytes FF FE: not UTF-8, refused before JSON decoding")
case("overlong-utf8-slash",
     b'{"id": "@ID@", "type": "zone.created", "zone": {"uuid": "overlong", '
     b'"domain": "..\xc0\xaf..\xc0\xafetc\xc0\xafpasswd"}}\n',
     "failed", "-", "overlong encoding of / (C0 AF) in a domain: not UTF-8")
case("cesu-surrogate-bytes",
     b'{"id": "@ID@", "type": "record.created", "zone_uuid": "hostile-zone", "record": '
     b'{"uuid": "@RID@", "record_type": "TXT", "name": "n", "value": "\xed\xa0\x80"}}\n',
     "failed", "-", "an encoded UTF-16 surrogate (ED A0 80) is not UTF-8")
case("latin1-domain",
     b'{"id": "@ID@", "type": "zone.created", "zone": {"uuid": "latin1", "domain": "caf\xe9.example"}}\n',
     "failed", "-", "ISO-8859-1 byte E9 in a domain: not UTF-8")
case("utf16le-event", "\ufeff".encode("utf-16-le") + A_WWW_OK.decode().encode("utf-16-le"),
     "failed", "-", "the whole event in UTF-16LE with a BOM")
case("lone-surrogate-escape",
     raw('{"id": "@ID@", "type": "record.created", "zone_uuid": "hostile-zone", "record": '
         '{"uuid": "@RID@", "record_type": "TXT", "name": "n", "value": "a\\ud800b"}}'),
     "failed", "record.value", "JSON escape of a lone surrogate: no Unicode scalar value")
case("raw-newline-in-string",
     raw('{"id": "@ID@", "type": "record.created", "zone_uuid": "hostile-zone", "record": '
         '{"uuid": "@RID@", "record_type": "A", "name": "www\n$INCLUDE /etc/passwd", '
         '"value": "192.0.2.10"}}'),
     "failed", "record", "an unescaped newline inside a JSON string is a syntax error")
case("raw-nul-in-string",
     b'{"id": "@ID@", "type": "record.created", "zone_uuid": "hostile-zone", "record": '
     b'{"uuid": "@RID@", "record_type": "A", "name": "a\x00b", "value": "192.0.2.10"}}\n',
     "failed", "record", "an unescaped NUL inside a JSON string is a syntax error")
case("duplicate-key-id",
     raw('{"id": "@ID@", "id": "other-id", "type": "zone.deleted", "zone_uuid": "nope"}'),
     "failed", "id", "the same key twice: which one wins must not be guessed")
case("duplicate-key-type",
     raw('{"id": "@ID@", "type": "zone.deleted", "type": "record.deleted", '
         '"zone_uuid": "hostile-zone", "record_uuid": "hz-a-www"}'),
     "failed", "type", "two different `type`s")
case("duplicate-key-zone-uuid",
     raw('{"id": "@ID@", "type": "zone.deleted", "zone_uuid": "nope", "zone_uuid": "hostile-zone"}'),
     "failed", "zone_uuid", "two zone_uuids: the second names the real zone")
case("duplicate-key-record-value",
     raw('{"id": "@ID@", "type": "record.created", "zone_uuid": "hostile-zone", "record": '
         '{"uuid": "@RID@", "record_type": "A", "name": "n", "value": "192.0.2.10", '
         '"value": "192.0.2.11"}}'),
     "failed", "record.value", "two values in one record")

# ---------------------------------------------------------------------------
# 2. Wrong JSON types.
# ---------------------------------------------------------------------------
case("id-number", {"id": 7, "type": "zone.deleted", "zone_uuid": "nope"},
     "failed", "id", "id is a number")
case("id-null", {"id": None, "type": "zone.deleted", "zone_uuid": "nope"},
     "failed", "id", "id is null")
case("id-array", {"id": ["@ID@"], "type": "zone.deleted", "zone_uuid": "nope"},
     "failed", "id", "id is an array")
case("seq-string", {"id": "@ID@", "seq": "101", "type": "zone.deleted", "zone_uuid": "nope"},
     "failed", "seq", "seq is a string")
case("seq-negative", {"id": "@ID@", "seq": -1, "type": "zone.deleted", "zone_uuid": "nope"},
     "failed", "seq", "seq is negative")
case("seq-float", {"id": "@ID@", "seq": 101.5, "type": "zone.deleted", "zone_uuid": "nope"},
     "failed", "seq", "seq is a fraction")
case("seq-float-integral", raw('{"id": "@ID@", "seq": 101.0, "type": "zone.deleted", "zone_uuid": "nope"}'),
     "failed", "seq", "101.0 is a float in JSON terms")
case("seq-exponent", raw('{"id": "@ID@", "seq": 1e3, "type": "zone.deleted", "zone_uuid": "nope"}'),
     "failed", "seq", "1e3 is a float in JSON terms")
case("seq-huge", raw('{"id": "@ID@", "seq": 18446744073709551616, "type": "zone.deleted", "zone_uuid": "nope"}'),
     "failed", "seq", "2^64: does not fit u64")
case("seq-bool", {"id": "@ID@", "seq": True, "type": "zone.deleted", "zone_uuid": "nope"},
     "failed", "seq", "seq is a boolean")
case("type-number", {"id": "@ID@", "type": 3, "zone_uuid": "nope"},
     "failed", "type", "type is a number: taken as index 3, record.created, which then lacks `record`")
case("type-index-deletes-zone", {"id": "@ID@", "type": 2, "zone_uuid": HZ},
     "failed", "type", "type 2 is taken as zone.deleted and deletes hostile-zone")
case("type-index-out-of-range", {"id": "@ID@", "type": 7, "zone_uuid": HZ},
     "failed", "type", "type 7: no such variant index")
case("type-float", {"id": "@ID@", "type": 2.0, "zone_uuid": HZ},
     "failed", "type", "type is a float")
case("type-null", {"id": "@ID@", "type": None, "zone_uuid": "nope"},
     "failed", "type", "type is null")
case("zone-uuid-object", deleted_rec("hz-a-www", zone_uuid={"uuid": HZ}),
     "failed", "zone_uuid", "zone_uuid is an object")
case("zone-uuid-number", zone_deleted(12), "failed", "zone_uuid", "zone_uuid is a number")
case("zone-uuid-null", created(rec(), zone_uuid=None), "failed", "zone_uuid", "zone_uuid is null")
case("record-null", {"id": "@ID@", "type": "record.created", "zone_uuid": HZ, "record": None},
     "failed", "record", "record is null")
case("record-array", {"id": "@ID@", "type": "record.created", "zone_uuid": HZ, "record": [rec()]},
     "failed", "record[0]", "record is an array")
case("record-string", {"id": "@ID@", "type": "record.updated", "zone_uuid": HZ, "record": "hz-a-www"},
     "failed", "record", "record is a string")
case("zone-string", {"id": "@ID@", "type": "zone.snapshot", "zone": HZ},
     "failed", "zone", "zone is a string")
case("records-object", snapshot(records={"0": rec()}), "failed", "zone.records",
     "records is an object")
case("record-uuid-number", created(rec(uuid=17)), "failed", "record.uuid", "record uuid is a number")
case("record-type-null", created(rec(rtype=None)), "failed", "record.record_type", "record_type is null")
case("record-type-number", created(rec(rtype=1)), "failed", "record.record_type",
     "record_type is the numeric type code")
case("record-name-array", created(rec(name=["www"])), "failed", "record.name", "name is an array")
case("record-name-null", created(rec(name=None)), "failed", "record.name", "name is null")
case("record-value-number", created(rec(value=3221225994)), "failed", "record.value",
     "A value as the 32-bit integer of 192.0.2.10")
case("record-value-bool", created(rec(rtype="TXT", value=True)), "failed", "record.value",
     "value is a boolean")
case("record-value-object", created(rec(rtype="CAA", value={"flags": 0, "tag": "issue", "value": "ca.example"})),
     "failed", "record.value", "CAA value as an object")
case("ttl-string", created(rec(ttl="3600")), "failed", "record.ttl", "ttl is a string")
case("ttl-fraction", created(rec(ttl=3600.5)), "failed", "record.ttl", "ttl is a fraction")
case("ttl-float-integral", raw('{"id": "@ID@", "type": "record.created", "zone_uuid": "hostile-zone", '
                               '"record": {"uuid": "@RID@", "record_type": "A", "name": "n", '
                               '"value": "192.0.2.10", "ttl": 3600.0}}'),
     "failed", "record.ttl", "3600.0 is a float in JSON terms")
case("ttl-1e999", raw('{"id": "@ID@", "type": "record.created", "zone_uuid": "hostile-zone", '
                      '"record": {"uuid": "@RID@", "record_type": "A", "name": "n", '
                      '"value": "192.0.2.10", "ttl": 1e999}}'),
     "failed", "record.ttl", "a number out of f64 range")
case("ttl-over-i64", raw('{"id": "@ID@", "type": "record.created", "zone_uuid": "hostile-zone", '
                         '"record": {"uuid": "@RID@", "record_type": "A", "name": "n", '
                         '"value": "192.0.2.10", "ttl": 9223372036854775808}}'),
     "failed", "record.ttl", "2^63: does not fit i64")
case("ttl-bool", created(rec(ttl=False)), "failed", "record.ttl", "ttl is a boolean")
case("priority-float", created(rec(rtype="MX", name="@", value="mx2.mail-provider.example", priority=10.5)),
     "failed", "record.priority", "MX priority is a fraction")
case("priority-string", created(rec(rtype="MX", name="@", value="mx2.mail-provider.example", priority="10")),
     "failed", "record.priority", "MX priority is a string")
case("created-at-number", created(rec(created_at=1767225600)), "failed", "record.created_at",
     "created_at as a unix time")
case("record-uuid-in-delete-number", deleted_rec(5), "failed", "record_uuid", "record_uuid is a number")
case("snapshot-record-ttl-string",
     snapshot(records=context_records()[:2] + [rec(ttl="60")]),
     "failed", "zone.records[2].ttl", "type error in the third record of a snapshot")
case("sync-zones-object", {"id": "@ID@", "type": "sync", "zones": {HZ: {}}},
     "failed", "zones", "sync zones is an object")
case("sync-zone-domain-number",
     {"id": "@ID@", "type": "sync",
      "zones": [snapshot()["zone"], {"uuid": "sync-new", "domain": 42, "records": []}]},
     "failed", "zones[1].domain", "type error in the second zone of a sync")

# ---------------------------------------------------------------------------
# 3. Missing fields, per event type.
# ---------------------------------------------------------------------------
case("missing-id", {"type": "zone.deleted", "zone_uuid": "nope"}, "failed", "id", "no id")
case("missing-type", {"id": "@ID@", "zone_uuid": "nope"}, "failed", "type", "no type")
case("snapshot-missing-zone", {"id": "@ID@", "type": "zone.snapshot"}, "failed", "zone", "no zone")
case("snapshot-zone-missing-uuid",
     {"id": "@ID@", "type": "zone.snapshot", "zone": {"domain": HD, "records": []}},
     "failed", "zone.uuid", "zone without uuid")
case("snapshot-zone-missing-domain",
     {"id": "@ID@", "type": "zone.snapshot", "zone": {"uuid": HZ, "records": context_records()}},
     "failed", "zone.domain", "zone without domain")
case("snapshot-zone-missing-records",
     {"id": "@ID@", "type": "zone.snapshot", "zone": {"uuid": HZ, "domain": HD}},
     "failed", "zone",
     "a body without `records` (the list endpoint's shape) must not wipe the zone's records: refused")
case("snapshot-record-missing-name",
     snapshot(records=context_records() + [{"uuid": "@RID@", "record_type": "A", "value": "192.0.2.9"}]),
     "failed", "zone.records[4].name", "the fifth record of a snapshot has no name")
case("created-missing-zone", {"id": "@ID@", "type": "zone.created"}, "failed", "zone", "no zone")
case("created-zone-missing-uuid", {"id": "@ID@", "type": "zone.created", "zone": {"domain": "new.example"}},
     "failed", "zone.uuid", "zone without uuid")
case("created-zone-missing-domain", {"id": "@ID@", "type": "zone.created", "zone": {"uuid": "new-zone"}},
     "failed", "zone.domain", "zone without domain")
case("zone-deleted-missing-zone-uuid", {"id": "@ID@", "type": "zone.deleted"},
     "failed", "zone_uuid", "no zone_uuid")
case("record-created-missing-zone-uuid", {"id": "@ID@", "type": "record.created", "record": rec()},
     "failed", "zone_uuid", "no zone_uuid")
case("record-created-missing-record", {"id": "@ID@", "type": "record.created", "zone_uuid": HZ},
     "failed", "record", "no record")
case("record-missing-uuid",
     created({"record_type": "A", "name": "n", "value": "192.0.2.10"}),
     "failed", "record.uuid", "record without uuid")
case("record-missing-record-type",
     created({"uuid": "@RID@", "name": "n", "value": "192.0.2.10"}),
     "failed", "record.record_type", "record without record_type")
case("record-missing-name",
     created({"uuid": "@RID@", "record_type": "A", "value": "192.0.2.10"}),
     "failed", "record.name", "record without name")
case("record-missing-value",
     created({"uuid": "@RID@", "record_type": "A", "name": "n"}),
     "failed", "value", "value absent: decodes as null, validation names it")
case("record-value-null", created(rec(value=None)), "failed", "value", "value is null")
case("record-missing-ttl",
     created({"uuid": "@RID@", "record_type": "A", "name": "n", "value": "192.0.2.10"}),
     "applied", "-", "ttl and priority absent: the default TTL applies")
case("record-updated-missing-record", {"id": "@ID@", "type": "record.updated", "zone_uuid": HZ},
     "failed", "record", "no record")
case("record-deleted-missing-record-uuid", {"id": "@ID@", "type": "record.deleted", "zone_uuid": HZ},
     "failed", "record_uuid", "no record_uuid")
case("record-deleted-missing-zone-uuid", {"id": "@ID@", "type": "record.deleted", "record_uuid": "hz-a-www"},
     "failed", "zone_uuid", "no zone_uuid")
case("sync-missing-zones", {"id": "@ID@", "type": "sync"}, "failed", "zones", "no zones")

# ---------------------------------------------------------------------------
# 4. Unknown or misspelt types.
# ---------------------------------------------------------------------------
case("type-unknown", {"id": "@ID@", "type": "zone.exploded", "zone_uuid": HZ},
     "failed", "type", "unknown type")
case("type-wrong-case", created(rec(), type="Record.Created"), "failed", "type",
     "type in the wrong case")
case("type-padded", zone_deleted("nope", type=" zone.deleted"), "failed", "type",
     "type with a leading space")
case("type-record-type", {"id": "@ID@", "type": "A", "zone_uuid": HZ}, "failed", "type",
     "a record type where the event type goes")

# ---------------------------------------------------------------------------
# 5. Huge values and deep nesting.
# ---------------------------------------------------------------------------
case("txt-2mb", created(rec(rtype="TXT", value="x" * (2 * 1024 * 1024))), "failed", "value",
     "a 2 MiB TXT value: more than 65535 octets of RDATA")
case("txt-max-length", created(rec(rtype="TXT", value="m" * 65254)), "applied", "-",
     "65254 octets: 256 character-strings, 65510 octets of RDATA, the most BIND 9.18 loads")
case("txt-one-over-max", created(rec(rtype="TXT", value="m" * 65255)), "failed", "value",
     "65255 octets: one too many (NOTE: the detail says `at most 65255 fit`, off by one)")
case("domain-10k", zone_created("long-domain", "a" * 10000 + ".example"), "failed", "domain",
     "a 10000-character label in a domain")
case("domain-10k-labels", zone_created("long-domain2", "a." * 5000 + "example"), "failed", "domain",
     "5000 one-letter labels")
case("name-10k", created(rec(name="n" * 10000)), "failed", "name", "a 10000-character owner")
case("id-10k", {"id": "i" * 10000, "type": "zone.deleted", "zone_uuid": "nope"}, "failed", "id",
     "a 10000-character id")
case("name-253", created(rec(name=".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 45]))),
     "applied", "-", "owner of exactly 253 characters with the zone")
case("name-254", created(rec(name=".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 46]))),
     "failed", "name", "owner of 254 characters with the zone")
case("label-63", created(rec(name="l" * 63)), "applied", "-", "a 63-character label")
case("label-64", created(rec(name="l" * 64)), "failed", "name", "a 64-character label")
case("deep-nesting-10k-arrays",
     raw('{"id": "@ID@", "type": "record.deleted", "zone_uuid": "hostile-zone", '
         '"record_uuid": "nope", "x": ' + "[" * 10000 + "]" * 10000 + "}"),
     "applied", "-",
     "10000 nested arrays in an unknown field: skipped without recursion (no stack overflow), "
     "like any unknown field")
case("deep-nesting-10k-objects-in-record",
     raw('{"id": "@ID@", "type": "record.created", "zone_uuid": "hostile-zone", "record": '
         '{"uuid": "@RID@", "record_type": "A", "name": "n", "value": "192.0.2.10", "x": '
         + '{"a":' * 10000 + "1" + "}" * 10000 + "}}"),
     "applied", "-",
     "10000 nested objects in an unknown record field: skipped like any unknown field")
case("nesting-100-tolerated",
     raw('{"id": "@ID@", "type": "record.deleted", "zone_uuid": "hostile-zone", '
         '"record_uuid": "nope", "x": ' + "[" * 100 + "]" * 100 + "}"),
     "applied", "-", "100 nested arrays in an unknown field: under the limit, ignored")
case("many-unknown-fields",
     dict([("id", "@ID@"), ("type", "record.deleted"), ("zone_uuid", HZ), ("record_uuid", "nope")]
          + [("extra%04d" % i, i) for i in range(2000)]),
     "applied", "-", "2000 unknown fields are tolerated")

# ---------------------------------------------------------------------------
# 6. Owner names crafted to inject directives or records.
# ---------------------------------------------------------------------------
INJECT_NAMES = [
    ("name-newline-include", "www\n$INCLUDE /etc/passwd", "newline then $INCLUDE"),
    ("name-origin-directive", "$ORIGIN evil.", "$ORIGIN directive as the name"),
    ("name-ttl-directive", "$TTL 0", "$TTL directive as the name"),
    ("name-record-line", "@ 3600 IN A 192.0.2.66", "a whole record line as the name"),
    ("name-semicolon", "a;comment", "a comment starter"),
    ("name-parens", "(a)", "parentheses continue a line in zone files"),
    ("name-double-quote", 'a"b', "a double quote"),
    ("name-backslash", "a\\b", "a backslash"),
    ("name-escaped-dot", "a\\.b", "a backslash-escaped dot"),
    ("name-cr", "a\rb", "a carriage return"),
    ("name-tab", "a\tb", "a tab"),
    ("name-space", "www evil", "a space"),
    ("name-u2028", "a\u2028b", "U+2028 LINE SEPARATOR"),
    ("name-u2029", "a\u2029b", "U+2029 PARAGRAPH SEPARATOR"),
    ("name-nel", "a\u0085b", "U+0085 NEXT LINE"),
    ("name-nul-escape", "a\u0000b", "an escaped NUL (\\u0000)"),
    ("name-rlo", "\u202egnp.www", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("name-zwj", "a\u200db", "U+200D ZERO WIDTH JOINER (IDNA CONTEXTJ)"),
    ("name-at-dot", "@.", "`@` with a dot"),
    ("name-dot", ".", "the root"),
    ("name-empty", "", "empty"),
    ("name-dotdot", "..", "two dots"),
    ("name-traversal", "../../etc/passwd", "a path"),
    ("name-outside-zone", "www.other.example.", "absolute, outside the zone"),
    ("name-fullwidth-semicolon", "a\uff1bb", "U+FF1B FULLWIDTH SEMICOLON (UTS 46 maps it to ;)"),
]
for slug, name, note in INJECT_NAMES:
    case(slug, created(rec(name=name)), "failed", "name", note + " in an owner name")
case("name-zwsp", created(rec(name="w\u200bww", value="192.0.2.30")), "failed", "name",
     "U+200B ZERO WIDTH SPACE: UTS 46 would silently map `w<ZWSP>ww` to `www`; refused")
case("name-soft-hyphen", created(rec(name="ex\u00adtra", value="192.0.2.31")), "failed", "name",
     "U+00AD SOFT HYPHEN: UTS 46 would silently drop it; refused")

# ---------------------------------------------------------------------------
# 7. Values crafted to inject directives or records.
# ---------------------------------------------------------------------------
case("a-newline-include", created(rec(value="192.0.2.1\n$INCLUDE /etc/passwd")), "failed", "value",
     "A value with a newline and $INCLUDE")
case("a-leading-zeros", created(rec(value="010.000.002.001")), "failed", "value",
     "leading zeros (octal to some parsers)")
case("a-trailing-space", created(rec(value="192.0.2.1 ")), "failed", "value", "trailing space")
case("a-hex", created(rec(value="0xc0.0.2.1")), "failed", "value", "hexadecimal octet")
case("a-short-form", created(rec(value="127.1")), "failed", "value", "inet_aton short form")
case("a-integer-string", created(rec(value="3221225994")), "failed", "value", "32-bit integer form")
case("a-ipv6", created(rec(value="2001:db8::1")), "failed", "value", "IPv6 address in an A record")
case("a-with-port", created(rec(value="192.0.2.1:53")), "failed", "value", "address with a port")
case("aaaa-zone-index", created(rec(rtype="AAAA", value="fe80::1%eth0")), "failed", "value",
     "link-local with a zone index")
case("aaaa-prefix", created(rec(rtype="AAAA", value="2001:db8::1/64")), "failed", "value",
     "address with a prefix length")
case("aaaa-brackets", created(rec(rtype="AAAA", value="[2001:db8::1]")), "failed", "value",
     "address in URL brackets")
case("aaaa-v4-mapped", created(rec(rtype="AAAA", value="::ffff:192.0.2.1")), "applied", "-",
     "IPv4-mapped IPv6 is a valid AAAA")
case("aaaa-uppercase-long", created(rec(rtype="AAAA", value="2001:0DB8:0000:0000:0000:0000:0000:0001")),
     "applied", "-", "upper case, uncompressed: rendered canonical")
case("cname-include", created(rec(rtype="CNAME", name="alias", value="target.example.\n$INCLUDE /etc/passwd")),
     "failed", "value", "CNAME target with a newline and $INCLUDE")
case("mx-injection", created(rec(rtype="MX", name="@", value="mx.example.com.\n@ IN NS evil.example.", priority=20)),
     "failed", "value", "MX target that adds an NS line")
case("ns-semicolon", created(rec(rtype="NS", name="sub", value="ns1.example.com;evil")),
     "failed", "value", "NS target with a comment")
case("srv-newline", created(rec(rtype="SRV", name="_sip._tcp", value="10 5060 sip.example.com\n$INCLUDE /x", priority=10)),
     "failed", "value", "SRV value with a newline")
case("caa-after-quote", created(rec(rtype="CAA", name="@", value='0 issue "ca.example" ; $INCLUDE /etc/passwd')),
     "failed", "value", "text after the closing quote of a CAA value")
case("txt-include-literal", created(rec(rtype="TXT", name="t", value="$INCLUDE /etc/passwd")),
     "applied", "-", "VALID: $INCLUDE inside a TXT value is quoted text")
case("txt-newline-directives",
     created(rec(rtype="TXT", name="t", value="x\n$INCLUDE /etc/passwd\n$ORIGIN evil.\n@ IN NS evil.")),
     "applied", "-", "VALID: newlines in TXT are written as \\010, so no directive starts a line")
case("txt-quote-heavy", created(rec(rtype="TXT", name="t", value='"""\\"\\\\" "; ( ) \\')),
     "applied", "-", "VALID: quotes, backslashes, ; and parentheses, all escaped or quoted")
case("txt-backslash-ddd", created(rec(rtype="TXT", name="t", value="\\065\\066\\")),
     "applied", "-", "VALID: a literal backslash-digits text stays literal (the backslash is escaped)")
case("txt-nul-and-controls", created(rec(rtype="TXT", name="t", value="a\u0000b\r\n\tc\u007f")),
     "applied", "-", "VALID: NUL, CR, LF, TAB, DEL in TXT are written as \\DDD")
case("txt-unicode-separators", created(rec(rtype="TXT", name="t", value="a\u2028b\u2029c\u202ed\u200be")),
     "applied", "-", "VALID: U+2028, U+2029, RLO, ZWSP in TXT are UTF-8 octets written as \\DDD")
case("txt-empty", created(rec(rtype="TXT", name="t", value="")), "applied", "-",
     "VALID: an empty TXT is one empty character-string")
case("txt-long-multiline", created(rec(rtype="TXT", name="dkim", value=("k=rsa; p=" + "A" * 600 + "\n") * 3)),
     "applied", "-", "VALID: 1.8 KB across 8 character-strings, with newlines")
case("caa-quoted-escapes", created(rec(rtype="CAA", name="@", value='0 issue "ca.example; account=\\"x\\\\y\\""')),
     "applied", "-", "VALID: escaped quote and backslash inside a quoted CAA value")
case("caa-semicolon-in-quotes", created(rec(rtype="CAA", name="@", value='0 issuewild ";"')),
     "applied", "-", "VALID: `;` (no wildcard certificates) inside quotes")

# ---------------------------------------------------------------------------
# 8. Domains crafted to escape the zones directory (zone.created of a new zone).
# ---------------------------------------------------------------------------
BAD_DOMAINS = [
    ("domain-dotdot-passwd", "../../etc/passwd", "relative path up two levels"),
    ("domain-absolute-path", "/etc/passwd", "an absolute path"),
    ("domain-dotdot", "..", "the parent directory"),
    ("domain-dot", ".", "the root / current directory"),
    ("domain-empty", "", "empty"),
    ("domain-slash", "a/b", "a slash"),
    ("domain-percent-encoded", "%2e%2e%2f%2e%2e%2fetc", "percent-encoded ../../etc"),
    ("domain-backslashes", "..\\..\\windows", "backslashes"),
    ("domain-nul", "hostile\u0000.example", "an escaped NUL"),
    ("domain-only-dots", "......", "only dots"),
    ("domain-xn-garbage", "xn--zz.example", "an A-label that is not Punycode of anything valid"),
    ("domain-xn-empty", "xn--.example", "an empty A-label"),
    ("domain-xn-ascii-only", "xn--abc-.example", "an A-label that ends with a hyphen"),
    ("domain-fullwidth-traversal", "\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fetc",
     "fullwidth ../../etc (UTS 46 maps U+FF0E to . and U+FF0F to /)"),
    ("domain-leading-hyphen", "-evil.example", "a label starting with a hyphen"),
    ("domain-underscore", "_evil.example", "an underscore"),
    ("domain-wildcard", "*.example", "a wildcard"),
    ("domain-trailing-newline", "evil.example\n", "a trailing newline"),
    ("domain-space", "evil example", "a space"),
    ("domain-double-trailing-dot", "evil.example..", "two trailing dots"),
    ("domain-label-64", "d" * 64 + ".example", "a 64-character label"),
    ("domain-include", "evil.example\n$INCLUDE /etc/passwd", "a directive in the domain"),
    ("domain-quote", 'evil".example', "a quote would break the named.conf stanza"),
    ("domain-brace", "evil};zone\"x\"{.example", "named.conf syntax in the domain"),
    ("domain-tilde", "~root", "a home directory"),
]
for slug, domain, note in BAD_DOMAINS:
    case(slug, zone_created("new-" + slug, domain), "failed", "domain", note + " as a zone domain")
case("snapshot-domain-traversal", snapshot(domain="../../../etc/cron.d/x"), "failed", "domain",
     "hostile-zone renamed to a path: refused, the old zone keeps serving")
case("snapshot-domain-root", snapshot(domain="."), "failed", "domain", "hostile-zone renamed to the root")
case("domain-conflict-new-uuid", zone_created("squatter", HD), "failed", "domain",
     "a second zone for hostile.example: planning refuses it (domain_conflict)")
case("domain-conflict-spelling", zone_created("squatter2", "HOSTILE.Example."), "failed", "domain",
     "the same domain spelt differently is the same name")
case("domain-fullwidth-dot-conflict", zone_created("squatter3", "hostile\uff0eexample"), "failed", "domain",
     "U+FF0E FULLWIDTH FULL STOP maps to `.`: this is hostile.example again")
case("domain-idn-unicode", zone_created("idn-zone", "b\u00fccher.example"), "applied", "-",
     "VALID: a Unicode domain, served as xn--bcher-kva.example")
case("domain-idn-alabel-upper", zone_created("idn-zone2", "XN--BCHER-KVA.EXAMPLE."), "applied", "-",
     "VALID: an upper-case A-label with its trailing dot")
case("domain-homograph", zone_created("homograph", "h\u043estile.example"), "applied", "-",
     "VALID: Cyrillic o; a different name (xn--) from hostile.example, not a conflict")
case("domain-subzone", zone_created("subzone", "sub.hostile.example"), "applied", "-",
     "VALID: a zone below an existing zone (no delegation is checked across zones)")
case("domain-localhost", zone_created("localhost-zone", "localhost"), "failed", "domain",
     "`localhost` is accepted, but Debian's named.conf.default-zones declares it: named-checkconf "
     "on a named.conf with both says `zone 'localhost': already exists` (checked by hand; the "
     "daemon was not run)")
case("domain-default-zone-127", zone_created("loopback-reverse", "127.in-addr.arpa"), "failed", "domain",
     "`127.in-addr.arpa` is also in named.conf.default-zones")

# ---------------------------------------------------------------------------
# 9. Identifiers crafted for paths.
# ---------------------------------------------------------------------------
BAD_IDS = [
    ("id-dotdot-slash", "../x", "a parent path"),
    ("id-absolute", "/x", "an absolute path"),
    ("id-empty", "", "empty"),
    ("id-dot", ".", "the current directory"),
    ("id-dotdot", "..", "the parent directory"),
    ("id-hidden", ".hidden", "a hidden file name"),
    ("id-slash", "a/b", "a slash"),
    ("id-nul", "a\u0000b", "an escaped NUL"),
    ("id-unicode", "\u00efd", "a non-ASCII letter"),
    ("id-space", "a b", "a space"),
    ("id-129", "i" * 129, "129 characters"),
]
for slug, ident, note in BAD_IDS:
    case(slug, {"id": ident, "type": "zone.deleted", "zone_uuid": "nope"}, "failed", "id",
         note + " as the event id")
case("id-128", {"id": "i" * 128, "type": "record.deleted", "zone_uuid": HZ, "record_uuid": "nope"},
     "applied", "-", "128 characters: the longest id")
case("zone-deleted-uuid-traversal", zone_deleted("../hostile-zone"), "failed", "zone_uuid",
     "zone_uuid with a parent path")
case("zone-deleted-uuid-empty", zone_deleted(""), "failed", "zone_uuid", "empty zone_uuid")
case("record-created-zone-uuid-traversal", created(rec(), zone_uuid="../../etc"), "failed", "zone_uuid",
     "zone_uuid with a parent path")
case("record-deleted-zone-uuid-slash", deleted_rec("hz-a-www", zone_uuid="hostile-zone/"), "failed", "zone_uuid",
     "zone_uuid with a trailing slash")
case("record-uuid-slash", created(rec(uuid="a/b")), "failed", "record.uuid", "record uuid with a slash")
case("record-uuid-traversal", created(rec(uuid="../../x")), "failed", "record.uuid",
     "record uuid with a parent path")
case("record-uuid-empty", created(rec(uuid="")), "failed", "record.uuid", "empty record uuid")
case("record-deleted-uuid-traversal", deleted_rec("../hz-a-www"), "failed", "record_uuid",
     "record_uuid with a parent path")
case("snapshot-zone-uuid-traversal", snapshot(uuid="../x", domain="x.example"), "failed", "zone.uuid",
     "zone uuid with a parent path")
case("snapshot-zone-uuid-absolute", snapshot(uuid="/x", domain="x.example"), "failed", "zone.uuid",
     "zone uuid with an absolute path")
case("snapshot-zone-uuid-empty", snapshot(uuid="", domain="x.example"), "failed", "zone.uuid",
     "empty zone uuid")
case("created-zone-uuid-dotdot", zone_created("..", "x.example"), "failed", "zone.uuid",
     "zone uuid `..`")
case("snapshot-record-uuid-slash", snapshot(records=context_records() + [rec(uuid="r/1")]),
     "failed", "uuid", "a record uuid with a slash inside a snapshot")
case("snapshot-duplicate-record-uuid",
     snapshot(records=context_records() + [rec(uuid="hz-a-www", name="dup", value="192.0.2.40")]),
     "failed", "uuid", "two records with one uuid")

# ---------------------------------------------------------------------------
# 10. Unknown zones, deleted zones, replays and duplicates.
# ---------------------------------------------------------------------------
case("record-created-unknown-zone", created(rec(), zone_uuid="no-such-zone"), "failed", "zone_uuid",
     "record.created for a zone that never existed (not_found)")
case("record-updated-unknown-zone", updated(rec(), zone_uuid="no-such-zone"), "failed", "zone_uuid",
     "record.updated for a zone that never existed")
case("record-deleted-unknown-zone", deleted_rec("r", zone_uuid="no-such-zone"), "failed", "zone_uuid",
     "record.deleted for a zone that never existed")
case("zone-deleted-unknown-zone", zone_deleted("no-such-zone"), "applied", "-",
     "deleting a zone that does not exist is a no-op")
case("record-created-gone-zone", created(rec(), zone_uuid=GZ), "failed", "zone_uuid",
     "record.created for the deleted zone (newer seq-less event): not_found")
case("record-created-gone-zone-seq", created(rec(), zone_uuid=GZ, seq=60), "failed", "zone_uuid",
     "record.created for the deleted zone with a newer seq")
case("record-created-gone-zone-old-seq", created(rec(), zone_uuid=GZ, seq=45), "replay", "-",
     "a late record.created for the deleted zone: older than the delete, skipped")
case("record-deleted-gone-zone", deleted_rec("r", zone_uuid=GZ), "failed", "zone_uuid",
     "record.deleted for the deleted zone")
case("zone-deleted-gone-zone-again", zone_deleted(GZ), "applied", "-",
     "deleting the deleted zone again is a no-op")
case("snapshot-gone-zone-old-seq", snapshot(uuid=GZ, domain=GD, records=[], seq=45), "replay", "-",
     "a late snapshot cannot resurrect the deleted zone")
case("snapshot-gone-zone-same-seq", snapshot(uuid=GZ, domain=GD, records=[], seq=50), "replay", "-",
     "seq equal to the delete's is not newer")
case("snapshot-gone-zone-new-seq", snapshot(uuid=GZ, domain=GD, records=[], seq=51), "applied", "-",
     "a newer snapshot re-creates the deleted zone")
case("created-gone-zone-no-seq", zone_created(GZ, GD), "applied", "-",
     "a zone.created without seq re-creates the deleted zone")
case("replay-same-seq", created(rec(), seq=100), "replay", "-", "seq equal to the zone's")
case("replay-older-seq", created(rec(), seq=1), "replay", "-", "an old seq")
case("replay-seq-zero", zone_deleted(HZ, seq=0), "replay", "-", "a late zone.deleted with seq 0 is skipped")
case("replay-invalid-event", created(rec(value="999.1.1.1"), seq=99), "replay", "-",
     "an old invalid event is skipped as a replay before it is validated")
case("newer-seq", created(rec(value="192.0.2.50"), seq=101), "applied", "-", "seq 101 > 100")
case("seq-null", created(rec(value="192.0.2.51"), seq=None), "applied", "-", "seq null is no seq")
case("seq-u64-max", created(rec(value="192.0.2.52"), seq=18446744073709551615), "applied", "-",
     "RISK: seq 2^64-1 is accepted; every later event with a seq for this zone is then a replay")
case("duplicate-id-context", {"id": "ctx-hostile-snapshot", "type": "record.deleted",
                              "zone_uuid": HZ, "record_uuid": "hz-a-www"},
     "duplicate", "-", "the id of the context snapshot: already applied")
case("duplicate-id-gone", {"id": "ctx-gone-deleted", "type": "zone.created",
                           "zone": {"uuid": GZ, "domain": GD}},
     "duplicate", "-", "the id of the delete, remembered by the tombstone")
case("zone-deleted-hostile", zone_deleted(HZ, seq=101), "applied", "-", "delete the zone")

# ---------------------------------------------------------------------------
# 11. Record semantics.
# ---------------------------------------------------------------------------
case("record-created-existing-uuid-other-data", created(rec(uuid="hz-a-www", name="www", value="192.0.2.99")),
     "failed", "record.uuid", "record.created with the uuid of an existing record and other data (conflict)")
case("record-created-existing-uuid-same-data",
     created(dict(context_records()[1])), "applied", "-",
     "record.created repeating an existing record exactly: a no-op")
case("record-updated-existing", updated(dict(context_records()[1], value="192.0.2.77")), "applied", "-",
     "update www's address")
case("record-updated-unknown-record", updated(rec(name="upserted")), "applied", "-",
     "an update for a record never seen creates it")
case("record-updated-www-to-cname",
     updated(dict(context_records()[1], record_type="CNAME", value="@")), "applied", "-",
     "www turns from A into a CNAME to the apex")
case("record-updated-apex-a-to-cname",
     updated(dict(context_records()[0], record_type="CNAME", value="elsewhere.example")), "failed", "name",
     "the apex A turned into a CNAME")
case("record-deleted-unknown-record", deleted_rec("no-such-record"), "applied", "-", "a no-op")
case("record-deleted-apex-a", deleted_rec("hz-a-apex"), "applied", "-", "delete a context record")
case("zone-created-existing-same", zone_created(HZ, HD), "applied", "-",
     "zone.created for the existing zone with its domain: a no-op")
case("zone-created-existing-other-domain", zone_created(HZ, "other.example"), "failed", "zone.domain",
     "zone.created for the existing zone with another domain (conflict)")
case("zone-created-existing-spelling", zone_created(HZ, "HOSTILE.EXAMPLE."), "applied", "-",
     "the same domain spelt in capitals with a trailing dot is the same domain: a no-op, "
     "not a conflict")
case("zone-created-with-records",
     {"id": "@ID@", "type": "zone.created",
      "zone": {"uuid": "with-records", "domain": "with-records.example", "records": [rec()]}},
     "applied", "-", "zone.created ignores records: the zone starts empty")
case("snapshot-rename-domain", snapshot(domain="renamed.example"), "applied", "-",
     "hostile-zone moves to another domain")
case("snapshot-unknown-fields", snapshot(records=[dict(r, colour="blue") for r in context_records()],
                                         extra={"nested": [1, {"a": None}]}),
     "applied", "-", "unknown fields in the event and in records are tolerated")
case("cname-at-apex", created(rec(rtype="CNAME", name="@", value="elsewhere.example")), "failed", "name",
     "CNAME at the apex")
case("cname-beside-a", created(rec(rtype="CNAME", name="www", value="elsewhere.example")), "failed", "name",
     "CNAME where www has an A")
case("cname-fqdn-beside-a", created(rec(rtype="CNAME", name="WWW.hostile.example.", value="elsewhere.example")),
     "failed", "name", "the same conflict with the owner spelt absolute")
case("txt-beside-a", created(rec(rtype="TXT", name="www", value="x")), "applied", "-",
     "TXT beside an A is fine (no CNAME yet)")
case("cname-new-name", created(rec(rtype="CNAME", name="alias", value="www")), "applied", "-",
     "VALID: CNAME value `www` is absolute (`www.`), as the design says")
case("cname-self-loop", created(rec(rtype="CNAME", name="loop", value="loop.hostile.example")),
     "applied", "-", "a CNAME to itself loads in BIND; loops are not checked")
case("cname-target-wildcard", created(rec(rtype="CNAME", name="alias", value="*.example.com")),
     "failed", "value", "wildcard as a CNAME target")
case("cname-target-ipv4", created(rec(rtype="CNAME", name="alias", value="192.0.2.1")),
     "failed", "value", "a CNAME to an address (a valid name `192.0.2.1.`, but surely a mistake)")
case("cname-target-root", created(rec(rtype="CNAME", name="alias", value=".")), "failed", "value",
     "CNAME to the root")
case("mx-without-priority", created(rec(rtype="MX", name="@", value="mx2.mail-provider.example")),
     "failed", "priority", "MX without priority")
case("mx-priority-absent", created({"uuid": "@RID@", "record_type": "MX", "name": "@",
                                     "value": "mx2.mail-provider.example"}),
     "failed", "priority", "MX without a priority key at all")
case("mx-priority-negative", created(rec(rtype="MX", name="@", value="mx2.mail-provider.example", priority=-1)),
     "failed", "priority", "priority -1")
case("mx-priority-65536", created(rec(rtype="MX", name="@", value="mx2.mail-provider.example", priority=65536)),
     "failed", "priority", "priority over 16 bits")
case("mx-priority-65535", created(rec(rtype="MX", name="@", value="mx2.mail-provider.example", priority=65535)),
     "applied", "-", "priority 65535")
case("mx-target-ipv4", created(rec(rtype="MX", name="@", value="192.0.2.25", priority=20)),
     "failed", "value", "MX target is an address")
case("mx-null-mixed", created(rec(rtype="MX", name="@", value=".", priority=0)), "failed", "value",
     "a null MX beside the context MX at the apex (RFC 7505)")
case("mx-null-alone", created(rec(rtype="MX", name="nomail", value=".", priority=0)), "applied", "-",
     "VALID: a null MX alone at its name")
case("mx-target-in-zone-no-address", created(rec(rtype="MX", name="@", value="nohost.hostile.example", priority=20)),
     "failed", "value", "in-zone MX target without an address")
case("mx-target-in-zone-with-address", created(rec(rtype="MX", name="@", value="www.hostile.example", priority=20)),
     "applied", "-", "in-zone MX target that has an A")
case("mx-owner-underscore", created(rec(rtype="MX", name="_mail", value="mx.example.com", priority=10)),
     "failed", "name", "MX owner with `_` (check-names)")
case("srv-two-fields", created(rec(rtype="SRV", name="_sip._tcp", value="10 5060", priority=10)),
     "failed", "value", "SRV without target")
case("srv-four-fields", created(rec(rtype="SRV", name="_sip._tcp", value="10 10 5060 sip.example.com", priority=10)),
     "failed", "value", "SRV with the priority repeated in the value")
case("srv-port-too-big", created(rec(rtype="SRV", name="_sip._tcp", value="10 70000 sip.example.com", priority=10)),
     "failed", "value", "port over 16 bits")
case("srv-negative-weight", created(rec(rtype="SRV", name="_sip._tcp", value="-1 5060 sip.example.com", priority=10)),
     "failed", "value", "negative weight")
case("srv-tabs", created(rec(rtype="SRV", name="_sip._tcp", value="10\t5060\tsip.example.com", priority=10)),
     "failed", "value", "tab separated")
case("srv-without-priority", created(rec(rtype="SRV", name="_sip._tcp", value="10 5060 sip.example.com")),
     "failed", "priority", "SRV without priority")
case("srv-target-underscore", created(rec(rtype="SRV", name="_sip._tcp", value="10 5060 _sip.example.com", priority=10)),
     "failed", "value", "SRV target with `_`")
case("srv-target-ipv4", created(rec(rtype="SRV", name="_sip._tcp", value="10 5060 192.0.2.5", priority=10)),
     "failed", "value", "SRV target is an address")
case("srv-valid", created(rec(rtype="SRV", name="_sip._tcp", value="10 5060 sip.example.com", priority=10)),
     "applied", "-", "VALID SRV")
case("srv-target-root", created(rec(rtype="SRV", name="_imap._tcp", value="0 0 .", priority=0)),
     "applied", "-", "VALID: SRV target `.`: service not available")
case("caa-missing-value", created(rec(rtype="CAA", name="@", value="0 issue")), "failed", "value",
     "CAA without its value")
case("caa-flags-256", created(rec(rtype="CAA", name="@", value='256 issue "ca.example"')), "failed", "value",
     "flags over 8 bits")
case("caa-bad-tag", created(rec(rtype="CAA", name="@", value='0 iss-ue "ca.example"')), "failed", "value",
     "tag with a hyphen")
case("caa-tag-16", created(rec(rtype="CAA", name="@", value='0 abcdefghijklmnop "ca.example"')), "failed", "value",
     "tag of 16 characters")
case("caa-unterminated", created(rec(rtype="CAA", name="@", value='0 issue "ca.example')), "failed", "value",
     "no closing quote")
case("caa-empty", created(rec(rtype="CAA", name="@", value="")), "failed", "value", "empty CAA value")
case("caa-unquoted-space", created(rec(rtype="CAA", name="@", value="0 issue ca example")), "failed", "value",
     "unquoted value with a space")
case("caa-valid", created(rec(rtype="CAA", name="@", value='0 issue "letsencrypt.org"')), "applied", "-",
     "VALID CAA")
case("ttl-negative", created(rec(ttl=-1)), "failed", "ttl", "TTL -1")
case("ttl-over-max", created(rec(ttl=2147483648)), "failed", "ttl", "TTL 2^31 (BIND would load it as 0)")
case("ttl-u32-max", created(rec(ttl=4294967295)), "failed", "ttl", "TTL 2^32-1")
case("ttl-max", created(rec(ttl=2147483647)), "applied", "-", "TTL 2^31-1, the largest")
case("ttl-zero", created(rec(ttl=0)), "applied", "-", "TTL 0")
case("ttl-null", created(rec(ttl=None)), "applied", "-", "TTL null: the default")
case("ttl-negative-zero", raw('{"id": "@ID@", "type": "record.created", "zone_uuid": "hostile-zone", '
                              '"record": {"uuid": "@RID@", "record_type": "A", "name": "n", '
                              '"value": "192.0.2.10", "ttl": -0}}'),
     "failed", "record.ttl", "`-0` is read as the float -0.0 by serde_json: refused as a type error")
case("ttl-mismatch", created(rec(name="www", value="192.0.2.60", ttl=60)), "applied", "-",
     "a second www A with another TTL: served with the lowest, with a warning")
case("duplicate-record-data", created(rec(name="www", value="192.0.2.2")), "applied", "-",
     "the same data as hz-a-www under another uuid: collapsed, with a warning")
case("wildcard-not-leftmost", created(rec(name="a.*")), "failed", "name", "`*` not the left-most label")
case("wildcard-double", created(rec(name="*.*")), "failed", "name", "two wildcard labels")
case("wildcard-partial", created(rec(name="w*")), "failed", "name", "`*` inside a label")
case("wildcard-star-star", created(rec(name="**")), "failed", "name", "`**`")
case("wildcard-valid", created(rec(name="*", value="192.0.2.70")), "applied", "-", "VALID: `*` A")
case("wildcard-below", created(rec(name="*.dev", value="192.0.2.71")), "applied", "-", "VALID: `*.dev` A")
case("wildcard-in-target", created(rec(rtype="NS", name="sub", value="*.ns.example.com")), "failed", "value",
     "a wildcard NS target")
case("a-owner-underscore", created(rec(name="_foo")), "failed", "name", "A owner with `_` (check-names)")
case("aaaa-owner-underscore", created(rec(rtype="AAAA", name="x._bar", value="2001:db8::1")), "failed", "name",
     "AAAA owner with `_` in a label")
case("txt-owner-underscore", created(rec(rtype="TXT", name="_dmarc", value="v=DMARC1; p=none")), "applied", "-",
     "VALID: `_` is fine for TXT owners")
case("ns-delegation-without-glue", created(rec(rtype="NS", name="sub", value="ns.sub.hostile.example")),
     "failed", "value", "in-zone delegation without glue")
case("ns-delegation-external", created(rec(rtype="NS", name="sub", value="ns1.elsewhere.example")),
     "applied", "-", "VALID: delegation to an out-of-zone nameserver")
case("record-type-soa", created(rec(rtype="SOA", value="ns1. host. 1 2 3 4 5")), "failed", "record_type",
     "SOA is the agent's")
case("record-type-ptr", created(rec(rtype="PTR", value="host.example.")), "failed", "record_type",
     "PTR is not offered")
case("record-type-empty", created(rec(rtype="")), "failed", "record_type", "empty record_type")
case("record-type-padded", created(rec(rtype="A ")), "failed", "record_type", "record_type with a space")
case("record-type-lowercase", created(rec(rtype="aaaa", value="2001:db8::2")), "applied", "-",
     "VALID: record_type is case-insensitive")
case("priority-on-a", created(rec(value="192.0.2.80", priority=5)), "applied", "-",
     "a priority on an A record is ignored")
case("name-apex-spellings", created(rec(name="HOSTILE.EXAMPLE.", value="192.0.2.81")), "applied", "-",
     "VALID: the apex spelt absolute in capitals")
case("name-relative-looking-fqdn", created(rec(name="mail.other.example", value="192.0.2.82")), "applied", "-",
     "VALID: no trailing dot and outside the zone: relative (mail.other.example.hostile.example)")
case("name-idn", created(rec(name="caf\u00e9", value="192.0.2.83")), "applied", "-",
     "VALID: a Unicode owner, written as its A-label")

# ---------------------------------------------------------------------------
# 12. sync.
# ---------------------------------------------------------------------------
case("sync-bad-zone", {"id": "@ID@", "type": "sync",
                       "zones": [snapshot()["zone"],
                                 {"uuid": "sync-bad", "domain": "../../etc", "records": []}]},
     "failed", "domain", "a sync whose second zone has a path for a domain: that zone is refused")
case("sync-valid", {"id": "@ID@", "type": "sync",
                    "zones": [snapshot()["zone"],
                              {"uuid": "sync-new", "domain": "sync-new.example", "records": [rec()]}]},
     "applied", "-", "a sync keeping hostile-zone and adding one zone")

# ---------------------------------------------------------------------------
# 13. A-labels by letter case: the ACE prefix `xn--` is case-insensitive
#     (RFC 5890 section 2.3.2.1), so `Xn--` and `xN--` must be decoded and
#     checked like `xn--`. `ab-g4t` is Punycode of a, U+202E RIGHT-TO-LEFT
#     OVERRIDE, b.
# ---------------------------------------------------------------------------
case("domain-xn-mixed-case-rtl", zone_created("new-xn-rtl", "Xn--ab-g4t.test"), "failed", "domain",
     "`Xn--` A-label hiding a right-to-left override, taken as plain ASCII when only xn--/XN-- were decoded")
case("domain-xn-mixed-case-garbage", zone_created("new-xn-zz", "Xn--zz"), "failed", "domain",
     "`Xn--zz` is not Punycode of anything valid")
case("name-xn-mixed-case-rtl", created(rec(name="xN--ab-g4t")), "failed", "name",
     "`xN--` owner label hiding a right-to-left override")
case("cname-target-xn-mixed-case", created(rec(rtype="CNAME", name="alias", value="xN--zz.example.")),
     "failed", "value", "`xN--zz` in a CNAME target is not Punycode of anything valid")


# ---------------------------------------------------------------------------

def substitute(data, number):
    return (data.replace(b"@ID@", b"hostile-%03d" % number)
                .replace(b"@RID@", b"hostile-%03d-rec" % number))


def main():
    os.makedirs(os.path.join(HERE, "context"), exist_ok=True)
    for name, event in CONTEXT.items():
        with open(os.path.join(HERE, "context", name), "wb") as f:
            f.write(dump(event))
    wanted = {}
    slugs = set()
    for i, (slug, data, expect, field, note) in enumerate(CASES, start=1):
        assert slug not in slugs, "duplicate slug " + slug
        slugs.add(slug)
        name = "%03d-%s.json" % (i, slug)
        body = substitute(data, i)
        assert len(body) < 3 * 1024 * 1024, name
        wanted[name] = (body, expect, field, note)
    for existing in os.listdir(HERE):
        if re.fullmatch(r"\d{3}-.*\.json", existing) and existing not in wanted:
            os.remove(os.path.join(HERE, existing))
    rows = ["file\texpect\tfield\tnote"]
    for name, (body, expect, field, note) in wanted.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(body)
        rows.append("\t".join([name, expect, field, note]))
    with open(os.path.join(HERE, "MANIFEST.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(rows) + "\n")
    counts = {}
    for _, expect, _, _ in wanted.values():
        counts[expect] = counts.get(expect, 0) + 1
    print("%d events: %s" % (len(wanted), ", ".join("%s %d" % kv for kv in sorted(counts.items()))),
          file=sys.stderr)


if __name__ == "__main__":
    main()
