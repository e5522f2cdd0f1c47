"""What the Twilio extract adds to what twilio-oai states as schema, each marked
`"x-source": "description"` (the spec says it in prose only)."""

# Twilio's JSON error body (https://www.twilio.com/docs/api/errors, as twilio-python reads it).
ERROR = {
    "type": "object",
    "required": ["code", "message", "status"],
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"},
                   "more_info": {"type": "string"}, "status": {"type": "integer"}},
}

# CreateOriginationUrlRequest / UpdateOriginationUrlRequest descriptions: "Weight ... Can be an
# integer from 1 to 65535", "Priority ... Can be an integer from 0 to 65535", FriendlyName "up to
# 64 characters long".
RANGES = {"Weight": (1, 65535), "Priority": (0, 65535)}


def apply(ops, defs):
    for op in ops:
        if op["id"] in ("CreateOriginationUrl", "UpdateOriginationUrl"):
            props = op["request"]["properties"]
            for key, (lo, hi) in RANGES.items():
                props[key].update({"minimum": lo, "maximum": hi, "x-source": "description"})
            props["FriendlyName"].update({"maxLength": 64, "x-source": "description"})
