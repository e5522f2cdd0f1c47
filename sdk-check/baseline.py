"""The per-line baseline of issue 17: checking lines one by one with the official SDKs.

What a runbook has a person (or a script written after it) do for each line: look the number
up at Telnyx (`GET /v2/phone_numbers?filter[phone_number]=...`: is it ours, active, on the
LiveKit connection?), find the LiveKit inbound trunk that holds it
(`ListSIPInboundTrunk` filtered by the number), then find the dispatch rule of that trunk
(`ListSIPDispatchRule` filtered by the trunk id). One line's three calls depend on each
other, and lines are checked one after another, as a loop over a list of churches is.

Reads the environment `cwa sandbox serve` prints and the numbers of a lines.toml:

    python sdk-check/baseline.py lines.toml [--sample K]

With `--sample K` only the first K lines are checked and the time of all of them is
extrapolated from the sample (said so in the output). The SDKs' start-up (imports, clients,
and the first call of each, which loads the SDK's generated modules: seconds on a loaded
machine) is measured apart and left out of the per-line figure, which favours the baseline.
Prints one JSON object: lines checked, lines declared, requests made, start-up seconds, wall
seconds of the checked lines, milliseconds per line, the extrapolated wall seconds for every
declared line, and how many lines were found wired (number on a connection, a trunk holding
it, a rule on that trunk).
"""

import argparse
import asyncio
import json
import os
import sys
import time
import tomllib


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set: run this against `cwa sandbox serve`")
    return value


def declared_numbers(path):
    """The fixed numbers of every church in lines.toml, in file order."""
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    return [
        c["number"]
        for c in doc.get("church", {}).values()
        if isinstance(c.get("number"), str) and c["number"].startswith("+")
    ]


async def check_line(tx, lk, number):
    """One line as the runbooks check it: number, then its trunk, then its rule. Returns the
    requests made and whether the line is wired."""
    from livekit.protocol import sip as sip_proto

    page = tx.phone_numbers.list(filter={"phone_number": number.lstrip("+")})
    record = next((n for n in page.data if n.phone_number == number), None)
    trunks = await lk.sip.list_inbound_trunk(sip_proto.ListSIPInboundTrunkRequest(numbers=[number]))
    trunk = next((t for t in trunks.items if number in t.numbers), None)
    if trunk is None:
        return 2, False
    rules = await lk.sip.list_dispatch_rule(
        sip_proto.ListSIPDispatchRuleRequest(trunk_ids=[trunk.sip_trunk_id])
    )
    return 3, record is not None and bool(record.connection_id) and bool(rules.items)


async def check_lines(numbers, started):
    import telnyx
    from livekit import api

    base = env("TELNYX_BASE_URL").rstrip("/")
    if not base.endswith("/v2"):
        base += "/v2"
    tx = telnyx.Telnyx(api_key=env("TELNYX_API_KEY"), base_url=base, max_retries=2)
    wired = 0
    requests = 0
    async with api.LiveKitAPI(
        env("LIVEKIT_URL"), env("LIVEKIT_API_KEY"), env("LIVEKIT_API_SECRET")
    ) as lk:
        if numbers:
            await check_line(tx, lk, numbers[0])
        startup = time.monotonic() - started
        start = time.monotonic()
        for number in numbers:
            made, ok = await check_line(tx, lk, number)
            requests += made
            wired += ok
        wall = time.monotonic() - start
    return requests, wired, startup, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lines_toml")
    parser.add_argument("--sample", type=int, default=0, help="check only the first K lines")
    args = parser.parse_args()
    numbers = declared_numbers(args.lines_toml)
    sample = numbers[: args.sample] if args.sample else numbers
    requests, wired, startup, wall = asyncio.run(check_lines(sample, time.monotonic()))
    per_line = wall / max(len(sample), 1)
    print(
        json.dumps(
            {
                "lines_checked": len(sample),
                "lines_declared": len(numbers),
                "requests": requests,
                "startup_s": round(startup, 3),
                "wall_s": round(wall, 3),
                "per_line_ms": round(per_line * 1000, 2),
                "extrapolated": len(sample) < len(numbers),
                "wall_all_lines_s": round(per_line * len(numbers), 3),
                "wired": wired,
            }
        )
    )
    return 0 if wired == len(sample) else 1


if __name__ == "__main__":
    sys.exit(main())
