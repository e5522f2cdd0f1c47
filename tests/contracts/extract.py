#!/usr/bin/env python3
"""Regenerates the contract extracts in this directory from the providers' published specs.

    python3 tests/contracts/extract.py TELNYX_SPEC3_YML TELNYX_COMMIT \
        TWILIO_V2010_JSON TWILIO_TRUNKING_JSON TWILIO_COMMIT

Reads the specs (Telnyx `openapi/spec3.yml` of github:team-telnyx/openapi; Twilio
`spec/json/twilio_api_v2010.json` and `twilio_trunking_v1.json` of github:twilio/twilio-oai),
keeps only the operations in OPERATIONS below and, of each schema, only what a validator needs
(type, properties, required, enum, items, minimum/maximum, minLength/maxLength, pattern), with
`additionalProperties: false` on every request object and every answer field nullable, and writes `telnyx.json` and
`twilio.json`. Rules the specs state only in prose are added by `RULES`, each marked
`"x-source": "description"`; shapes the spec of that commit lacks but the SDK documents are
added by `SDK_OPERATIONS`, marked `"x-source"` with the SDK file.
"""
import json
import sys

import yaml

HERE = __file__.rsplit("/", 1)[0]
KEEP = {"type", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern",
        "minItems", "maxItems", "exclusiveMinimum", "exclusiveMaximum"}

TELNYX_OPERATIONS = [
    ("GET", "/available_phone_numbers"),
    ("POST", "/number_orders"), ("GET", "/number_orders"),
    ("GET", "/number_orders/{number_order_id}"), ("PATCH", "/number_orders/{number_order_id}"),
    ("GET", "/phone_numbers"), ("GET", "/phone_numbers/{id}"),
    ("PATCH", "/phone_numbers/{id}"), ("DELETE", "/phone_numbers/{id}"),
    # Issue 23: `cwa add --reserve` holds the number a pastor is shown until apply buys it.
    ("POST", "/number_reservations"), ("GET", "/number_reservations"),
    ("GET", "/number_reservations/{number_reservation_id}"),
    ("POST", "/number_reservations/{number_reservation_id}/actions/extend"),
    # Issue 21: E911 addresses (no update exists) and a number's emergency service.
    ("GET", "/addresses"), ("POST", "/addresses"),
    ("GET", "/addresses/{id}"), ("DELETE", "/addresses/{id}"),
    ("POST", "/phone_numbers/{id}/actions/enable_emergency"),
] + [
    (m, p)
    for c in ["fqdn_connections", "fqdns", "credential_connections",
              "outbound_voice_profiles", "texml_applications"]
    for (m, p) in [("GET", f"/{c}"), ("POST", f"/{c}"), ("GET", f"/{c}/{{id}}"),
                   ("PATCH", f"/{c}/{{id}}"), ("DELETE", f"/{c}/{{id}}")]
]

TWILIO_V2010 = [
    ("GET", "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json"),
    ("GET", "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}.json"),
    ("POST", "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}.json"),
    ("DELETE", "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}.json"),
]
TWILIO_TRUNKING = [
    ("GET", "/v1/Trunks"), ("POST", "/v1/Trunks"),
    ("GET", "/v1/Trunks/{Sid}"), ("POST", "/v1/Trunks/{Sid}"), ("DELETE", "/v1/Trunks/{Sid}"),
    ("GET", "/v1/Trunks/{TrunkSid}/PhoneNumbers"), ("POST", "/v1/Trunks/{TrunkSid}/PhoneNumbers"),
    ("GET", "/v1/Trunks/{TrunkSid}/PhoneNumbers/{Sid}"),
    ("DELETE", "/v1/Trunks/{TrunkSid}/PhoneNumbers/{Sid}"),
    ("GET", "/v1/Trunks/{TrunkSid}/OriginationUrls"),
    ("POST", "/v1/Trunks/{TrunkSid}/OriginationUrls"),
    ("GET", "/v1/Trunks/{TrunkSid}/OriginationUrls/{Sid}"),
    ("POST", "/v1/Trunks/{TrunkSid}/OriginationUrls/{Sid}"),
    ("DELETE", "/v1/Trunks/{TrunkSid}/OriginationUrls/{Sid}"),
]


class Compactor:
    """Turns OpenAPI 3.0/3.1 schemas into compact JSON Schema with `#/$defs/` references."""

    def __init__(self, spec, closed_objects):
        self.spec = spec
        self.defs = {}
        self.closed = closed_objects

    def resolve(self, ref):
        node = self.spec
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        return node

    def ref(self, ref):
        name = ref.split("/")[-1]
        if name not in self.defs:
            self.defs[name] = None
            self.defs[name] = self.conv(self.resolve(ref))
        return {"$ref": f"#/$defs/{name}"}

    def merged(self, parts):
        """allOf: one object with every part's properties and required keys."""
        out = {"type": "object", "properties": {}, "required": []}
        for part in parts:
            while "$ref" in part:
                part = self.resolve(part["$ref"])
            if "allOf" in part:
                part = self.merged_raw(part["allOf"])
            c = self.conv(part)
            out["properties"].update(c.get("properties", {}))
            out["required"] += [r for r in c.get("required", []) if r not in out["required"]]
        if not out["required"]:
            del out["required"]
        if self.closed:
            out["additionalProperties"] = False
        return out

    def merged_raw(self, parts):
        props, req = {}, []
        for part in parts:
            while "$ref" in part:
                part = self.resolve(part["$ref"])
            if "allOf" in part:
                part = self.merged_raw(part["allOf"])
            props.update(part.get("properties", {}))
            req += part.get("required", [])
        return {"type": "object", "properties": props, "required": req}

    def conv(self, s):
        if not isinstance(s, dict):
            return {}
        if "$ref" in s:
            return self.ref(s["$ref"])
        if "allOf" in s:
            if len(s["allOf"]) == 1 and "properties" not in s:
                inner = s["allOf"][0]
                out = self.conv(inner)
                return self.nullable(out, s)
            return self.nullable(self.merged(s["allOf"] + ([{"properties": s["properties"]}] if "properties" in s else [])), s)
        for key in ("oneOf", "anyOf"):
            if key in s:
                return self.nullable({"anyOf": [self.conv(x) for x in s[key]]}, s)
        # Answers keep types and enums only: real answers carry "" for unset SIDs and ids
        # that the specs' patterns and lengths (written for set values) would refuse.
        keep = KEEP if self.closed else {"type", "enum"}
        out = {k: v for k, v in s.items() if k in keep}
        if "items" in s:
            out["items"] = self.conv(s["items"])
        if "properties" in s or s.get("type") == "object":
            props = {k: self.conv(v) for k, v in s.get("properties", {}).items()
                     if not (self.closed and v.get("readOnly"))}
            if props or "properties" in s:
                out["properties"] = props
                req = [r for r in s.get("required", []) if r in props]
                if req:
                    out["required"] = req
                ap = s.get("additionalProperties")
                if self.closed:
                    out["additionalProperties"] = False
                elif isinstance(ap, dict):
                    out["additionalProperties"] = self.conv(ap)
            elif isinstance(s.get("additionalProperties"), dict):
                out["additionalProperties"] = self.conv(s["additionalProperties"])
        return self.nullable(out, s)

    def nullable(self, out, s):
        # Answers: every field may be null. spec3.yml marks few response fields nullable, yet
        # Telnyx (and the reference) answer null for unset ones (webhook_event_url,
        # max_destination_rate, an srv record's port); the types of present values still hold.
        if s.get("nullable") or not self.closed:
            t = out.get("type")
            if t == "null":
                pass
            elif isinstance(t, str):
                out["type"] = [t, "null"]
            elif isinstance(t, list) and "null" not in t:
                out["type"] = t + ["null"]
            elif "$ref" in out or "anyOf" in out:
                out = {"anyOf": [out, {"type": "null"}]}
            if "enum" in out and None not in out["enum"]:
                out["enum"] = out["enum"] + [None]
        return out


def flatten_query(name, schema, style, out, conv):
    """deepObject parameters become bracketed names: filter[phone_number][ends_with]."""
    if style == "deepObject" and "properties" in schema:
        for key, sub in schema["properties"].items():
            flatten_query(f"{name}[{key}]", sub, "deepObject", out, conv)
    else:
        out[name] = conv.conv(schema)


def telnyx_param(spec, p):
    while "$ref" in p:
        p = Compactor(spec, False).resolve(p["$ref"])
    return p


def operation(spec, method, path, base, content):
    op = spec["paths"][path][method.lower()]
    req_c = Compactor(spec, True)
    resp_c = Compactor(spec, False)
    query = {}
    for p in op.get("parameters", []) + spec["paths"][path].get("parameters", []):
        p = telnyx_param(spec, p)
        if p.get("in") == "query":
            schema = p.get("schema", {})
            while "$ref" in schema:
                schema = req_c.resolve(schema["$ref"])
            flatten_query(p["name"], schema, p.get("style"), query, req_c)
            # "To have the results sorted in descending order add the <code> -</code> prefix."
            enum = query.get(p["name"], {}).get("enum")
            if enum and "-</code> prefix" in p.get("description", ""):
                query[p["name"]]["enum"] = enum + ["-" + v for v in enum if not v.startswith("-")]
                query[p["name"]]["x-source"] = "description"
    entry = {"id": op["operationId"], "method": method, "path": base + path}
    entry["query"] = {"type": "object", "properties": query, "additionalProperties": False}
    body = op.get("requestBody", {}).get("content", {}).get(content, {}).get("schema")
    if body is not None:
        entry["body"] = "json" if content == "application/json" else "form"
        entry["request"] = req_c.conv(body)
    responses = {}
    for code, r in op.get("responses", {}).items():
        if not code.startswith("2"):
            continue
        while "$ref" in r:
            r = resp_c.resolve(r["$ref"])
        schema = r.get("content", {}).get("application/json", {}).get("schema")
        responses[code] = resp_c.conv(schema) if schema else {}
    entry["responses"] = responses
    return entry, {**resp_c.defs}, {**req_c.defs}


def build(spec, ops, base, content):
    out, defs = [], {}
    for method, path in ops:
        entry, resp_defs, req_defs = operation(spec, method, path, base, content)
        for name, d in resp_defs.items():
            defs[f"r.{name}"] = d
        for name, d in req_defs.items():
            defs[f"q.{name}"] = d
        rename(entry.get("request"), "q.")
        rename(entry.get("query"), "q.")
        for r in entry["responses"].values():
            rename(r, "r.")
        out.append(entry)
    for name, d in defs.items():
        rename(d, name[:2])
    return out, defs


def rename(node, prefix):
    if isinstance(node, dict):
        if "$ref" in node and node["$ref"].startswith("#/$defs/") and "." not in node["$ref"][8:10]:
            node["$ref"] = "#/$defs/" + prefix + node["$ref"][8:]
        for v in node.values():
            rename(v, prefix)
    elif isinstance(node, list):
        for v in node:
            rename(v, prefix)


def main():
    telnyx_yml, telnyx_commit, v2010, trunking, twilio_commit = sys.argv[1:6]
    spec = yaml.safe_load(open(telnyx_yml))
    ops, defs = build(spec, TELNYX_OPERATIONS, "/v2", "application/json")
    import telnyx_rules
    telnyx_rules.apply(ops, defs)
    write("telnyx.json", {
        "provider": "telnyx",
        "sources": [
            {"repository": "github:team-telnyx/openapi", "commit": telnyx_commit,
             "file": "openapi/spec3.yml"},
        ] + telnyx_rules.SOURCES,
        "error": telnyx_rules.ERROR,
        "operations": ops,
        "$defs": defs,
    })
    ops = []
    defs = {}
    for f, opl in [(v2010, TWILIO_V2010), (trunking, TWILIO_TRUNKING)]:
        s = json.load(open(f))
        o, d = build(s, opl, "", "application/x-www-form-urlencoded")
        ops += o
        defs.update(d)
    import twilio_rules
    twilio_rules.apply(ops, defs)
    write("twilio.json", {
        "provider": "twilio",
        "sources": [
            {"repository": "github:twilio/twilio-oai", "commit": twilio_commit,
             "file": "spec/json/twilio_api_v2010.json"},
            {"repository": "github:twilio/twilio-oai", "commit": twilio_commit,
             "file": "spec/json/twilio_trunking_v1.json"},
        ],
        "error": twilio_rules.ERROR,
        "operations": ops,
        "$defs": defs,
    })


def write(name, doc):
    with open(f"{HERE}/{name}", "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main()
