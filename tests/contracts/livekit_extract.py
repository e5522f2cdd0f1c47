#!/usr/bin/env python3
"""Regenerates `livekit.json` from the LiveKit protos (github:livekit/protocol).

    python3 tests/contracts/livekit_extract.py PROTOBUFS_DIR COMMIT

PROTOBUFS_DIR is `protobufs/` of a checkout of livekit/protocol at COMMIT. The SIP service is
`livekit_sip.proto`; the messages it reaches live in `livekit_models.proto` (ListUpdate,
Pagination), `livekit_room.proto` (RoomConfiguration), `livekit_agent_dispatch.proto`
(RoomAgentDispatch), `livekit_egress.proto` and `livekit_agent.proto`.

For every method in METHODS it writes an operation `POST /twirp/livekit.SIP/{Method}`, and for
every one in PHONE_METHODS (`livekit_phone_number.proto`) `POST
/twirp/livekit.PhoneNumberService/{Method}`, whose
request and 200 response are JSON Schemas of the protojson form Twirp reads and writes:
either the proto name or the lowerCamel JSON name of a field, null for any field (protojson
reads it as the default), 32-bit integers as numbers or decimal strings, 64-bit integers as
decimal strings or numbers, enums as their value names or numbers, `Duration` and `Timestamp`
as their protojson strings, maps as objects, and at most one member of a oneof. Request objects
are closed (`additionalProperties: false`): the real server discards unknown JSON fields
(twirp's `protojson.UnmarshalOptions{DiscardUnknown: true}`), so a key the protos do not declare
is a write that silently does nothing; the strict sandbox refuses it. Response objects stay open
(a newer server adds fields). `protobuf` holds each message's field numbers and types, so the
sandbox can read a protobuf body against the protos themselves, not the Rust structs the
clients are built from, and write its JSON answers from the same tables (each field's `oneof`
group, or `optional: true` for a proto3 optional field, says it is left out when unset).
"""
import json
import re
import sys

METHODS = [
    ("CreateSIPInboundTrunk", "CreateSIPInboundTrunkRequest", "SIPInboundTrunkInfo"),
    ("UpdateSIPInboundTrunk", "UpdateSIPInboundTrunkRequest", "SIPInboundTrunkInfo"),
    ("GetSIPInboundTrunk", "GetSIPInboundTrunkRequest", "GetSIPInboundTrunkResponse"),
    ("ListSIPInboundTrunk", "ListSIPInboundTrunkRequest", "ListSIPInboundTrunkResponse"),
    ("CreateSIPOutboundTrunk", "CreateSIPOutboundTrunkRequest", "SIPOutboundTrunkInfo"),
    ("UpdateSIPOutboundTrunk", "UpdateSIPOutboundTrunkRequest", "SIPOutboundTrunkInfo"),
    ("GetSIPOutboundTrunk", "GetSIPOutboundTrunkRequest", "GetSIPOutboundTrunkResponse"),
    ("ListSIPOutboundTrunk", "ListSIPOutboundTrunkRequest", "ListSIPOutboundTrunkResponse"),
    ("DeleteSIPTrunk", "DeleteSIPTrunkRequest", "SIPTrunkInfo"),
    ("CreateSIPTrunk", "CreateSIPTrunkRequest", "SIPTrunkInfo"),
    ("ListSIPTrunk", "ListSIPTrunkRequest", "ListSIPTrunkResponse"),
    ("CreateSIPDispatchRule", "CreateSIPDispatchRuleRequest", "SIPDispatchRuleInfo"),
    ("UpdateSIPDispatchRule", "UpdateSIPDispatchRuleRequest", "SIPDispatchRuleInfo"),
    ("ListSIPDispatchRule", "ListSIPDispatchRuleRequest", "ListSIPDispatchRuleResponse"),
    ("DeleteSIPDispatchRule", "DeleteSIPDispatchRuleRequest", "SIPDispatchRuleInfo"),
    ("CreateSIPParticipant", "CreateSIPParticipantRequest", "SIPParticipantInfo"),
    ("TransferSIPParticipant", "TransferSIPParticipantRequest", "TransferSIPParticipantResponse"),
]
# `livekit.PhoneNumberService` (livekit_phone_number.proto): LiveKit's own numbers (issue 20).
PHONE_METHODS = [
    ("SearchPhoneNumbers", "SearchPhoneNumbersRequest", "SearchPhoneNumbersResponse"),
    ("PurchasePhoneNumber", "PurchasePhoneNumberRequest", "PurchasePhoneNumberResponse"),
    ("ListPhoneNumbers", "ListPhoneNumbersRequest", "ListPhoneNumbersResponse"),
    ("GetPhoneNumber", "GetPhoneNumberRequest", "GetPhoneNumberResponse"),
    ("UpdatePhoneNumber", "UpdatePhoneNumberRequest", "UpdatePhoneNumberResponse"),
    ("ReleasePhoneNumbers", "ReleasePhoneNumbersRequest", "ReleasePhoneNumbersResponse"),
]
SERVICES = [("SIP", METHODS), ("PhoneNumberService", PHONE_METHODS)]
FILES = ["livekit_sip.proto", "livekit_models.proto", "livekit_room.proto",
         "livekit_agent_dispatch.proto", "livekit_egress.proto", "livekit_agent.proto",
         "livekit_phone_number.proto"]
INT32 = {"int32", "sint32", "sfixed32", "uint32", "fixed32"}
INT64 = {"int64", "sint64", "sfixed64", "uint64", "fixed64"}
SCALARS = INT32 | INT64 | {"string", "bytes", "bool", "float", "double"}
WELL_KNOWN = {
    "google.protobuf.Duration": {"type": ["string", "null"], "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.Timestamp": {"type": ["string", "null"],
                                  "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9:]+)$"},
}

TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_.]*|-?[0-9]+|[{}\[\]<>=;,()]')


def tokens(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return TOKEN.findall(text)


class Parser:
    def __init__(self, toks):
        self.t = toks
        self.i = 0
        self.messages = {}
        self.enums = {}

    def next(self):
        tok = self.t[self.i]
        self.i += 1
        return tok

    def skip_statement(self):
        depth = 0
        while True:
            tok = self.next()
            if tok in "{[(":
                depth += 1
            elif tok in "}])":
                depth -= 1
                if depth == 0 and tok == "}":
                    return
            elif tok == ";" and depth == 0:
                return

    def file(self):
        while self.i < len(self.t):
            tok = self.next()
            if tok == "message":
                self.message("")
            elif tok == "enum":
                self.enum("")
            elif tok in ("service", "syntax", "package", "import", "option"):
                self.i -= 1
                self.skip_statement()

    def enum(self, scope):
        name = scope + self.next()
        self.next()  # {
        values = []
        while (tok := self.next()) != "}":
            if tok in ("option", "reserved"):
                self.i -= 1
                self.skip_statement()
                continue
            self.next()  # =
            values.append((tok, int(self.next())))
            self.skip_statement()
        self.enums[name] = values

    def message(self, scope):
        name = scope + self.next()
        self.next()  # {
        fields = []
        self.body(name, fields, None)
        self.messages[name] = fields

    def body(self, name, fields, oneof):
        while (tok := self.next()) != "}":
            if tok == ";":
                continue
            block = self.t[self.i + 1] == "{"
            if tok == "message" and block:
                self.message(name + ".")
            elif tok == "enum" and block:
                self.enum(name + ".")
            elif tok == "oneof" and block:
                group = self.next()
                self.next()  # {
                self.body(name, fields, group)
            elif tok in ("option", "reserved", "extensions"):
                self.i -= 1
                self.skip_statement()
            else:
                self.field(tok, name, fields, oneof)

    def field(self, tok, scope, fields, oneof):
        label = None
        if tok in ("repeated", "optional"):
            label, tok = tok, self.next()
        if tok == "map":
            self.next()  # <
            key = self.next()
            self.next()  # ,
            value = self.next()
            self.next()  # >
            kind = ("map", key, value)
        else:
            kind = ("type", tok)
        fname = self.next()
        self.next()  # =
        number = int(self.next())
        self.skip_statement()
        fields.append({"name": fname, "number": number, "label": label, "kind": kind,
                       "oneof": oneof, "scope": scope})


def camel(name):
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def names(name):
    """The names protojson reads a field by: its proto name and its lowerCamel JSON name."""
    return [name] if camel(name) == name else [name, camel(name)]


class Extract:
    def __init__(self, parser):
        self.p = parser
        self.defs = {}
        self.protobuf = {}

    def resolve(self, tname, scope):
        if tname in WELL_KNOWN or tname in SCALARS:
            return tname
        tname = tname.removeprefix("livekit.")
        parts = scope.split(".")
        for n in range(len(parts), -1, -1):
            candidate = ".".join(parts[:n] + [tname]) if n else tname
            if candidate in self.p.messages or candidate in self.p.enums:
                return candidate
        return None

    def scalar(self, tname):
        if tname in INT32:
            return {"type": ["integer", "string", "null"], "pattern": r"^-?[0-9]+$"}
        if tname in INT64:
            return {"type": ["string", "integer", "null"], "pattern": r"^-?[0-9]+$"}
        if tname in ("float", "double"):
            return {"type": ["number", "string", "null"], "pattern": r"^(-?[0-9.eE+-]+|NaN|-?Infinity)$"}
        if tname == "bool":
            return {"type": ["boolean", "null"]}
        return {"type": ["string", "null"]}

    def value(self, tname, scope, side):
        """The schema of one value of protobuf type `tname`, and its protobuf descriptor."""
        if tname in WELL_KNOWN:
            return dict(WELL_KNOWN[tname]), {"type": tname}
        if tname in SCALARS:
            return self.scalar(tname), {"type": tname}
        full = self.resolve(tname, scope)
        if full is None:
            return {"type": ["object", "null"], "x-unresolved": tname}, {"type": "unresolved"}
        if full in self.p.enums:
            names = [n for n, _ in self.p.enums[full]]
            return ({"anyOf": [{"enum": names + [None]}, {"type": "integer"}]},
                    {"type": "enum", "enum": "livekit." + full})
        self.define(full, side)
        return ({"$ref": f"#/$defs/{side}.livekit.{full}"},
                {"type": "message", "message": "livekit." + full})

    def define(self, full, side):
        key = f"{side}.livekit.{full}"
        if key in self.defs:
            return
        self.defs[key] = None
        props, oneofs, pb = {}, {}, {}
        for f in self.p.messages[full]:
            kind = f["kind"]
            if kind[0] == "map":
                schema, desc = self.value(kind[2], f["scope"], side)
                key_desc = {"type": kind[1]}
                schema = {"type": ["object", "null"], "additionalProperties": schema}
                desc = {"type": "map", "key": key_desc, "value": desc}
            else:
                schema, desc = self.value(kind[1], f["scope"], side)
                if f["label"] == "repeated":
                    schema = {"type": ["array", "null"], "items": schema}
                    desc = dict(desc, repeated=True)
            for n in names(f["name"]):
                props[n] = schema
            pb[str(f["number"])] = dict(desc, name=f["name"])
            # A oneof member or a proto3 `optional` field (a synthetic oneof): protojson leaves
            # it out when unset, even with EmitUnpopulated, so the sandbox's answers do too.
            if f["oneof"]:
                pb[str(f["number"])]["oneof"] = f["oneof"]
            if f["label"] == "optional":
                pb[str(f["number"])]["optional"] = True
            if f["oneof"]:
                oneofs.setdefault(f["oneof"], []).append(f["name"])
        schema = {"type": ["object", "null"], "properties": props}
        if side == "request":
            schema["additionalProperties"] = False
        exclusive = []
        for members in oneofs.values():
            for a in range(len(members)):
                for b in range(a + 1, len(members)):
                    for x in names(members[a]):
                        for y in names(members[b]):
                            exclusive.append({"not": {"required": [x, y]}})
        if exclusive:
            schema["allOf"] = exclusive
        self.defs[key] = schema
        self.protobuf.setdefault("livekit." + full, pb)

    def enums(self):
        used = set()
        for fields in self.protobuf.values():
            for d in fields.values():
                for desc in (d, d.get("value", {})):
                    if desc.get("type") == "enum":
                        used.add(desc["enum"])
        return {e: {str(n): name for name, n in self.p.enums[e.removeprefix("livekit.")]}
                for e in sorted(used)}


def main(root, commit):
    parser = Parser([])
    for name in FILES:
        with open(f"{root}/{name}") as f:
            p = Parser(tokens(f.read()))
        p.file()
        parser.messages.update(p.messages)
        parser.enums.update(p.enums)
    ex = Extract(parser)
    operations = []
    for service, method, request, response in (
            (service, *m) for service, methods in SERVICES for m in methods):
        ex.define(request, "request")
        ex.define(response, "response")
        operations.append({
            "id": method,
            "method": "POST",
            "path": f"/twirp/livekit.{service}/{method}",
            "body": "json",
            "protobuf": {"request": f"livekit.{request}", "response": f"livekit.{response}"},
            "request": {"$ref": f"#/$defs/request.livekit.{request}"},
            "responses": {"200": {"$ref": f"#/$defs/response.livekit.{response}"}},
        })
    doc = {
        "provider": "livekit",
        "sources": [{"repository": "github:livekit/protocol", "commit": commit,
                     "file": f"protobufs/{name}"} for name in FILES],
        "error": {
            "type": "object",
            "required": ["code", "msg"],
            "properties": {"code": {"type": "string", "enum": [
                "canceled", "unknown", "invalid_argument", "malformed", "deadline_exceeded",
                "not_found", "bad_route", "already_exists", "permission_denied",
                "unauthenticated", "resource_exhausted", "failed_precondition", "aborted",
                "out_of_range", "unimplemented", "internal", "unavailable", "data_loss"]},
                "msg": {"type": "string"},
                "meta": {"type": "object", "additionalProperties": {"type": "string"}}},
        },
        "operations": operations,
        "$defs": ex.defs,
        "protobuf": {"messages": dict(sorted(ex.protobuf.items())), "enums": ex.enums()},
    }
    with open(__file__.rsplit("/", 1)[0] + "/livekit.json", "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
