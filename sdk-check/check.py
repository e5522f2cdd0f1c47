"""Drive a running cwa sandbox with the official Python SDKs of LiveKit, Telnyx and Twilio.

Reads the environment `cwa sandbox serve` prints (LIVEKIT_URL, LIVEKIT_API_KEY,
LIVEKIT_API_SECRET, TELNYX_BASE_URL, TELNYX_API_KEY, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,
TWILIO_API_BASE_URL, TWILIO_TRUNKING_BASE_URL) and, through each SDK unchanged, creates,
lists, updates and deletes every object kind cwa manages. Every check prints PASS or FAIL;
the exit status is the number of failures (0 = the SDKs agree with the sandbox).
"""

import asyncio
import os
import sys
import traceback
from urllib.parse import urlsplit

RESULTS = []


def check(name, fn):
    """Runs one named check; a raised exception or a false assertion is a failure."""
    try:
        fn()
        RESULTS.append((name, True, ""))
        print(f"PASS {name}", flush=True)
    except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
        detail = f"{type(e).__name__}: {e}"
        RESULTS.append((name, False, detail))
        print(f"FAIL {name}: {detail}", flush=True)
        traceback.print_exc(limit=3)


async def acheck(name, coro_fn):
    try:
        await coro_fn()
        RESULTS.append((name, True, ""))
        print(f"PASS {name}", flush=True)
    except Exception as e:  # noqa: BLE001
        detail = f"{type(e).__name__}: {e}"
        RESULTS.append((name, False, detail))
        print(f"FAIL {name}: {detail}", flush=True)
        traceback.print_exc(limit=3)


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set: run this against `cwa sandbox serve`")
    return value


# ---- LiveKit ------------------------------------------------------------------------------

AGENT = "churchwiseai-voice"


async def livekit_checks():
    from livekit import api
    from livekit.protocol import agent_dispatch as dispatch_proto
    from livekit.protocol import models as models_proto
    from livekit.protocol import room as room_proto
    from livekit.protocol import sip as sip_proto

    url, key, secret = env("LIVEKIT_URL"), env("LIVEKIT_API_KEY"), env("LIVEKIT_API_SECRET")
    state = {}

    def agents_config(agent=AGENT):
        return room_proto.RoomConfiguration(
            agents=[dispatch_proto.RoomAgentDispatch(agent_name=agent, metadata='{"source":"phone"}')]
        )

    def individual(prefix):
        return sip_proto.SIPDispatchRule(
            dispatch_rule_individual=sip_proto.SIPDispatchRuleIndividual(room_prefix=prefix)
        )

    async with api.LiveKitAPI(url, key, secret) as lk:
        sip = lk.sip

        async def list_seeded_trunks():
            res = await sip.list_inbound_trunk(sip_proto.ListSIPInboundTrunkRequest())
            ids = {t.sip_trunk_id for t in res.items}
            assert "ST_Xa3Bp9aixRFP" in ids and "ST_LWgmiBSwTk7P" in ids, ids
            res = await sip.list_inbound_trunk(
                sip_proto.ListSIPInboundTrunkRequest(numbers=["14144007103"])
            )
            assert [t.sip_trunk_id for t in res.items] == ["ST_LWgmiBSwTk7P"], res.items

        async def create_inbound():
            t = await sip.create_inbound_trunk(
                sip_proto.CreateSIPInboundTrunkRequest(
                    trunk=sip_proto.SIPInboundTrunkInfo(
                        name="sdk-check inbound", numbers=["+12125550101"], krisp_enabled=True
                    )
                )
            )
            assert t.sip_trunk_id.startswith("ST_") and len(t.sip_trunk_id) == 15, t
            assert list(t.numbers) == ["+12125550101"] and t.krisp_enabled
            state["inbound"] = t.sip_trunk_id

        async def conflicting_inbound_is_refused():
            try:
                await sip.create_inbound_trunk(
                    sip_proto.CreateSIPInboundTrunkRequest(
                        trunk=sip_proto.SIPInboundTrunkInfo(
                            name="dup", numbers=["+12125550101"], auth_username="x", auth_password="y"
                        )
                    )
                )
            except api.TwirpError as e:
                assert e.code == "invalid_argument" and e.status == 400, e
                assert "Conflicting inbound SIP Trunks" in e.message, e.message
                return
            raise AssertionError("a second trunk on the same number was accepted")

        async def update_inbound_fields():
            t = await sip.update_inbound_trunk_fields(
                state["inbound"],
                name="sdk-check inbound renamed",
                numbers=models_proto.ListUpdate(add=["+12125550102"]),
            )
            assert t.name == "sdk-check inbound renamed", t
            assert list(t.numbers) == ["+12125550101", "+12125550102"], t.numbers

        async def replace_inbound():
            t = await sip.update_inbound_trunk(
                state["inbound"],
                sip_proto.SIPInboundTrunkInfo(name="sdk-check replaced", numbers=["+12125550103"]),
            )
            assert t.sip_trunk_id == state["inbound"] and list(t.numbers) == ["+12125550103"], t
            assert not t.krisp_enabled

        async def second_inbound():
            t = await sip.create_inbound_trunk(
                sip_proto.CreateSIPInboundTrunkRequest(
                    trunk=sip_proto.SIPInboundTrunkInfo(name="sdk-check two", numbers=["+12125550104"])
                )
            )
            state["inbound2"] = t.sip_trunk_id

        async def outbound_lifecycle():
            t = await sip.create_outbound_trunk(
                sip_proto.CreateSIPOutboundTrunkRequest(
                    trunk=sip_proto.SIPOutboundTrunkInfo(
                        name="sdk-check outbound",
                        address="sip.telnyx.com",
                        transport=sip_proto.SIP_TRANSPORT_TCP,
                        numbers=["+12268830000"],
                        auth_username="cwaoutbound",
                        auth_password="sandbox-outbound-secret",
                        destination_country="US",
                    )
                )
            )
            out_id = t.sip_trunk_id
            listed = await sip.list_outbound_trunk(sip_proto.ListSIPOutboundTrunkRequest())
            assert out_id in {x.sip_trunk_id for x in listed.items}
            assert "ST_X3n9jxR55VrB" in {x.sip_trunk_id for x in listed.items}
            t = await sip.update_outbound_trunk_fields(
                out_id, name="sdk-check outbound renamed", numbers=models_proto.ListUpdate(add=["+12268830001"])
            )
            assert t.name == "sdk-check outbound renamed" and t.address == "sip.telnyx.com", t
            assert list(t.numbers) == ["+12268830000", "+12268830001"], t.numbers
            t = await sip.update_outbound_trunk(
                out_id,
                sip_proto.SIPOutboundTrunkInfo(
                    name="sdk-check outbound replaced", address="sip.telnyx.com", numbers=["+12268830000"]
                ),
            )
            assert t.name == "sdk-check outbound replaced", t
            deleted = await sip.delete_trunk(sip_proto.DeleteSIPTrunkRequest(sip_trunk_id=out_id))
            assert deleted.sip_trunk_id == out_id
            listed = await sip.list_outbound_trunk(sip_proto.ListSIPOutboundTrunkRequest())
            assert out_id not in {x.sip_trunk_id for x in listed.items}

        async def invalid_outbound_is_refused():
            try:
                await sip.create_outbound_trunk(
                    sip_proto.CreateSIPOutboundTrunkRequest(
                        trunk=sip_proto.SIPOutboundTrunkInfo(name="bad", address="sip.telnyx.com")
                    )
                )
            except api.TwirpError as e:
                assert e.code == "invalid_argument" and e.message == "no trunk numbers specified", e
                return
            raise AssertionError("an outbound trunk without numbers was accepted")

        async def dispatch_rule_lifecycle():
            r = await sip.create_dispatch_rule(
                sip_proto.CreateSIPDispatchRuleRequest(
                    dispatch_rule=sip_proto.SIPDispatchRuleInfo(
                        name="sdk-check dispatch",
                        trunk_ids=[state["inbound"]],
                        rule=individual("call-"),
                        room_config=agents_config(),
                    )
                )
            )
            assert r.sip_dispatch_rule_id.startswith("SDR_") and len(r.sip_dispatch_rule_id) == 16, r
            assert [a.agent_name for a in r.room_config.agents] == [AGENT], r
            rule_id = r.sip_dispatch_rule_id
            listed = await sip.list_dispatch_rule(
                sip_proto.ListSIPDispatchRuleRequest(trunk_ids=[state["inbound"]])
            )
            assert [x.sip_dispatch_rule_id for x in listed.items] == [rule_id], listed.items
            r = await sip.update_dispatch_rule_fields(
                rule_id, name="sdk-check dispatch renamed", attributes={"church": "sdk"}
            )
            assert r.name == "sdk-check dispatch renamed", r
            assert [a.agent_name for a in r.room_config.agents] == [AGENT], r
            assert dict(r.attributes) == {"church": "sdk"}, r.attributes
            r = await sip.update_dispatch_rule(
                rule_id,
                sip_proto.SIPDispatchRuleInfo(
                    name="sdk-check dispatch replaced",
                    trunk_ids=[state["inbound"]],
                    rule=individual("room-"),
                    room_config=agents_config(),
                ),
            )
            assert r.rule.dispatch_rule_individual.room_prefix == "room-", r
            deleted = await sip.delete_dispatch_rule(
                sip_proto.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id)
            )
            assert deleted.sip_dispatch_rule_id == rule_id

        async def deprecated_create_keeps_room_config():
            # The current server keeps room_config on the deprecated create path
            # (livekit/livekit, 2025-01-26); the runbook's incident is history (docs/runbook-world.md).
            request = sip_proto.CreateSIPDispatchRuleRequest(
                rule=individual("call-"),
                trunk_ids=[state["inbound2"]],
                name="sdk-check deprecated",
                room_config=agents_config(),
            )
            r = await sip.create_dispatch_rule(request)
            assert r.name == "sdk-check deprecated" and list(r.trunk_ids) == [state["inbound2"]], r
            assert [a.agent_name for a in r.room_config.agents] == [AGENT], r
            await sip.delete_dispatch_rule(
                sip_proto.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=r.sip_dispatch_rule_id)
            )

        async def missing_rule_is_not_found():
            try:
                await sip.delete_dispatch_rule(
                    sip_proto.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id="SDR_nonexistent00")
                )
            except api.TwirpError as e:
                assert e.code == "not_found" and e.status == 404, e
                return
            raise AssertionError("deleting an unknown rule succeeded")

        async def delete_inbound_trunks():
            for key in ("inbound", "inbound2"):
                await sip.delete_trunk(sip_proto.DeleteSIPTrunkRequest(sip_trunk_id=state[key]))
            res = await sip.list_inbound_trunk(sip_proto.ListSIPInboundTrunkRequest())
            ids = {t.sip_trunk_id for t in res.items}
            assert state["inbound"] not in ids and state["inbound2"] not in ids

        for name, fn in [
            ("livekit: list seeded inbound trunks (+ numbers filter)", list_seeded_trunks),
            ("livekit: create inbound trunk", create_inbound),
            ("livekit: conflicting inbound trunk refused", conflicting_inbound_is_refused),
            ("livekit: update inbound trunk fields (ListUpdate)", update_inbound_fields),
            ("livekit: replace inbound trunk", replace_inbound),
            ("livekit: create second inbound trunk", second_inbound),
            ("livekit: outbound trunk create/list/update/replace/delete", outbound_lifecycle),
            ("livekit: invalid outbound trunk refused", invalid_outbound_is_refused),
            ("livekit: dispatch rule create/list/update/replace/delete", dispatch_rule_lifecycle),
            ("livekit: deprecated create keeps room_config", deprecated_create_keeps_room_config),
            ("livekit: unknown dispatch rule is not_found", missing_rule_is_not_found),
            ("livekit: delete inbound trunks", delete_inbound_trunks),
        ]:
            await acheck(name, fn)

    async def wrong_secret_is_401():
        async with api.LiveKitAPI(url, key, "not-the-secret") as bad:
            try:
                await bad.sip.list_inbound_trunk(sip_proto.ListSIPInboundTrunkRequest())
            except api.TwirpError as e:
                assert e.status == 401, e
                return
            raise AssertionError("a token signed with the wrong secret was accepted")

    await acheck("livekit: token with the wrong secret is 401", wrong_secret_is_401)


# ---- Telnyx -------------------------------------------------------------------------------

FQDN_CONNECTION = "2925081061861885519"


def telnyx_checks():
    import telnyx

    base = env("TELNYX_BASE_URL").rstrip("/")
    if not base.endswith("/v2"):
        base += "/v2"
    client = telnyx.Telnyx(api_key=env("TELNYX_API_KEY"), base_url=base, max_retries=0)
    state = {}

    def list_numbers():
        numbers = {n.phone_number: n for n in client.phone_numbers.list(page_size=250)}
        assert "+14144007103" in numbers, sorted(numbers)
        assert numbers["+14144007103"].connection_id == FQDN_CONNECTION

    def search_order_update_release():
        found = client.available_phone_numbers.list(
            filter={"national_destination_code": "414", "limit": 3}
        )
        candidates = [n.phone_number for n in found.data]
        assert candidates, "no available numbers in 414"
        order = client.number_orders.create(
            phone_numbers=[{"phone_number": candidates[0]}],
            connection_id=FQDN_CONNECTION,
            customer_reference="sdk-check-order-1",
        )
        order_id = order.data.id
        again = client.number_orders.retrieve(order_id)
        assert again.data.id == order_id
        orders = client.number_orders.list(filter={"customer_reference": "sdk-check-order-1"})
        assert [o.id for o in orders.data] == [order_id], orders.data
        digits = candidates[0].lstrip("+")
        page = client.phone_numbers.list(filter={"phone_number": digits})
        numbers = list(page)
        assert len(numbers) == 1, numbers
        number = numbers[0]
        assert number.status == "active", number.status
        updated = client.phone_numbers.update(number.id, tags=["sdk-check"])
        assert list(updated.data.tags) == ["sdk-check"], updated.data
        fetched = client.phone_numbers.retrieve(number.id)
        assert fetched.data.phone_number == candidates[0]
        client.phone_numbers.delete(number.id)
        try:
            client.phone_numbers.retrieve(number.id)
        except telnyx.NotFoundError:
            return
        raise AssertionError("a released number is still readable")

    def fqdn_connection_lifecycle():
        conn = client.fqdn_connections.create(
            connection_name="sdk-check inbound",
            transport_protocol="TCP",
            inbound={"ani_number_format": "+E.164", "dnis_number_format": "+e164"},
        )
        conn_id = conn.data.id
        state["fqdn_connection"] = conn_id
        fetched = client.fqdn_connections.retrieve(conn_id)
        assert fetched.data.connection_name == "sdk-check inbound"
        assert fetched.data.inbound.dnis_number_format == "+e164", fetched.data.inbound
        updated = client.fqdn_connections.update(conn_id, connection_name="sdk-check renamed")
        assert updated.data.connection_name == "sdk-check renamed"
        names = [c.connection_name for c in client.fqdn_connections.list(page_size=250)]
        assert "sdk-check renamed" in names and "LiveKit ChurchWiseAI" in names, names

    def fqdn_lifecycle():
        fqdn = client.fqdns.create(
            connection_id=state["fqdn_connection"],
            fqdn="5u9xu5ysoly.sip.livekit.cloud",
            dns_record_type="a",
            port=5060,
        )
        fqdn_id = fqdn.data.id
        assert client.fqdns.retrieve(fqdn_id).data.fqdn == "5u9xu5ysoly.sip.livekit.cloud"
        listed = [f.id for f in client.fqdns.list(filter={"connection_id": state["fqdn_connection"]})]
        assert listed == [fqdn_id], listed
        updated = client.fqdns.update(fqdn_id, port=5061)
        assert updated.data.port == 5061, updated.data
        client.fqdns.delete(fqdn_id)
        client.fqdn_connections.delete(state["fqdn_connection"])
        try:
            client.fqdn_connections.retrieve(state["fqdn_connection"])
        except telnyx.NotFoundError:
            return
        raise AssertionError("a deleted connection is still readable")

    def credential_connection_lifecycle():
        conn = client.credential_connections.create(
            connection_name="sdk-check outbound", user_name="sdkcheckuser", password="sdk-check-password"
        )
        conn_id = conn.data.id
        fetched = client.credential_connections.retrieve(conn_id)
        assert fetched.data.user_name == "sdkcheckuser"
        names = [c.connection_name for c in client.credential_connections.list(page_size=250)]
        assert "CWA Verticals Platform Outbound" in names, names
        updated = client.credential_connections.update(
            conn_id, outbound={"outbound_voice_profile_id": "2925086295615079772"}
        )
        assert updated.data.outbound.outbound_voice_profile_id == "2925086295615079772", updated.data
        client.credential_connections.delete(conn_id)

    def outbound_voice_profile_lifecycle():
        profile = client.outbound_voice_profiles.create(
            name="sdk-check profile", whitelisted_destinations=["US", "CA"]
        )
        profile_id = profile.data.id
        assert client.outbound_voice_profiles.retrieve(profile_id).data.name == "sdk-check profile"
        updated = client.outbound_voice_profiles.update(
            profile_id, name="sdk-check profile", whitelisted_destinations=["US"]
        )
        assert list(updated.data.whitelisted_destinations) == ["US"], updated.data
        names = [p.name for p in client.outbound_voice_profiles.list()]
        assert "ChurchWiseAI" in names, names
        client.outbound_voice_profiles.delete(profile_id)

    def texml_application_lifecycle():
        app = client.texml_applications.create(
            friendly_name="sdk-check fallback", voice_url="https://example.com/fallback"
        )
        app_id = app.data.id
        assert client.texml_applications.retrieve(app_id).data.friendly_name == "sdk-check fallback"
        updated = client.texml_applications.update(
            app_id, friendly_name="sdk-check fallback 2", voice_url="https://example.com/fallback2"
        )
        assert updated.data.voice_url == "https://example.com/fallback2", updated.data
        names = [a.friendly_name for a in client.texml_applications.list()]
        assert "ChurchWiseAI Fallback Greeting" in names, names
        client.texml_applications.delete(app_id)

    def wrong_key_is_401():
        bad = telnyx.Telnyx(api_key="KEYwrong", base_url=base, max_retries=0)
        try:
            bad.phone_numbers.list()
        except telnyx.AuthenticationError:
            return
        raise AssertionError("a wrong API key was accepted")

    for name, fn in [
        ("telnyx: list seeded phone numbers", list_numbers),
        ("telnyx: search, order, read, update and release a number", search_order_update_release),
        ("telnyx: FQDN connection create/read/update/list", fqdn_connection_lifecycle),
        ("telnyx: FQDN record create/read/list/update/delete", fqdn_lifecycle),
        ("telnyx: credential connection lifecycle", credential_connection_lifecycle),
        ("telnyx: outbound voice profile lifecycle", outbound_voice_profile_lifecycle),
        ("telnyx: TeXML application lifecycle", texml_application_lifecycle),
        ("telnyx: wrong API key is 401", wrong_key_is_401),
    ]:
        check(name, fn)


# ---- Twilio -------------------------------------------------------------------------------


def twilio_checks():
    from twilio.base.exceptions import TwilioException, TwilioRestException
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    bases = {
        "api.twilio.com": env("TWILIO_API_BASE_URL").rstrip("/"),
        "trunking.twilio.com": env("TWILIO_TRUNKING_BASE_URL").rstrip("/"),
    }

    class SandboxHttpClient(TwilioHttpClient):
        """The SDK's own HTTP client, with Twilio's hosts swapped for the sandbox's."""

        def request(self, method, url, *args, **kwargs):
            parts = urlsplit(url)
            base = bases.get(parts.hostname or "")
            if base is not None:
                path = parts.path
                base_path = urlsplit(base).path
                if base_path and path.startswith(base_path):
                    path = path[len(base_path):]
                url = base + path + (f"?{parts.query}" if parts.query else "")
            return super().request(method, url, *args, **kwargs)

    sid, token = env("TWILIO_ACCOUNT_SID"), env("TWILIO_AUTH_TOKEN")
    client = Client(sid, token, http_client=SandboxHttpClient())
    state = {}

    def list_numbers():
        numbers = {n.phone_number: n for n in client.incoming_phone_numbers.list()}
        assert "+14696152221" in numbers and "+13658253552" in numbers, sorted(numbers)
        state["spare"] = numbers["+13658253552"]
        filtered = client.incoming_phone_numbers.list(phone_number="+14696152221")
        assert [n.phone_number for n in filtered] == ["+14696152221"], filtered

    def update_number():
        spare = state["spare"]
        updated = client.incoming_phone_numbers(spare.sid).update(friendly_name="Spare (sdk-check)")
        assert updated.friendly_name == "Spare (sdk-check)", updated
        fetched = client.incoming_phone_numbers(spare.sid).fetch()
        assert fetched.friendly_name == "Spare (sdk-check)"

    def trunk_lifecycle():
        trunk = client.trunking.v1.trunks.create(
            friendly_name="sdk-check trunk", domain_name="sdk-check.pstn.twilio.com"
        )
        state["trunk"] = trunk.sid
        assert trunk.sid.startswith("TK"), trunk.sid
        fetched = client.trunking.v1.trunks(trunk.sid).fetch()
        assert fetched.domain_name == "sdk-check.pstn.twilio.com"
        updated = client.trunking.v1.trunks(trunk.sid).update(friendly_name="sdk-check trunk 2")
        assert updated.friendly_name == "sdk-check trunk 2"
        domains = [t.domain_name for t in client.trunking.v1.trunks.list()]
        assert "churchwiseai.pstn.twilio.com" in domains, domains

    def origination_url_lifecycle():
        urls = client.trunking.v1.trunks(state["trunk"]).origination_urls
        url = urls.create(
            friendly_name="LiveKit",
            sip_url="sip:5u9xu5ysoly.sip.livekit.cloud;transport=tcp",
            priority=10,
            weight=10,
            enabled=True,
        )
        assert url.sid.startswith("OU"), url.sid
        assert [u.sid for u in urls.list()] == [url.sid]
        updated = client.trunking.v1.trunks(state["trunk"]).origination_urls(url.sid).update(weight=20)
        assert updated.weight == 20, updated.weight
        client.trunking.v1.trunks(state["trunk"]).origination_urls(url.sid).delete()
        assert urls.list() == []

    def trunk_number_lifecycle():
        spare = state["spare"]
        home = spare.trunk_sid
        assert home, "the spare number sits on the test trunk in the runbook world"
        try:
            client.trunking.v1.trunks(state["trunk"]).phone_numbers.create(phone_number_sid=spare.sid)
        except TwilioRestException as e:
            assert e.status == 400, e
        else:
            raise AssertionError("a number was attached to a second trunk")
        client.trunking.v1.trunks(home).phone_numbers(spare.sid).delete()
        numbers = client.trunking.v1.trunks(state["trunk"]).phone_numbers
        attached = numbers.create(phone_number_sid=spare.sid)
        assert attached.sid == spare.sid, attached.sid
        assert [n.sid for n in numbers.list()] == [spare.sid]
        client.trunking.v1.trunks(state["trunk"]).phone_numbers(spare.sid).delete()
        assert numbers.list() == []
        still_owned = client.incoming_phone_numbers(spare.sid).fetch()
        assert still_owned.phone_number == "+13658253552" and still_owned.trunk_sid is None
        client.trunking.v1.trunks(home).phone_numbers.create(phone_number_sid=spare.sid)
        assert client.incoming_phone_numbers(spare.sid).fetch().trunk_sid == home

    def delete_trunk():
        client.trunking.v1.trunks(state["trunk"]).delete()
        try:
            client.trunking.v1.trunks(state["trunk"]).fetch()
        except TwilioRestException as e:
            assert e.status == 404, e
            return
        raise AssertionError("a deleted trunk is still readable")

    def wrong_token_is_401():
        bad = Client(sid, "wrong-token", http_client=SandboxHttpClient())
        try:
            bad.incoming_phone_numbers.list()
        except TwilioException as e:
            assert "401" in str(e) and "20003" in str(e), e
            return
        raise AssertionError("a wrong token was accepted")

    for name, fn in [
        ("twilio: list incoming numbers (+ PhoneNumber filter)", list_numbers),
        ("twilio: update and fetch an incoming number", update_number),
        ("twilio: trunk create/fetch/update/list", trunk_lifecycle),
        ("twilio: origination URL create/list/update/delete", origination_url_lifecycle),
        ("twilio: attach and detach a trunk phone number", trunk_number_lifecycle),
        ("twilio: delete trunk", delete_trunk),
        ("twilio: wrong token is 401/20003", wrong_token_is_401),
    ]:
        check(name, fn)


def main():
    only = set(sys.argv[1:]) or {"livekit", "telnyx", "twilio"}
    if "livekit" in only:
        asyncio.run(livekit_checks())
    if "telnyx" in only:
        telnyx_checks()
    if "twilio" in only:
        twilio_checks()
    failed = [r for r in RESULTS if not r[1]]
    print(f"\n{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    for name, _, detail in failed:
        print(f"  FAIL {name}: {detail}")
    return min(len(failed), 100)


if __name__ == "__main__":
    sys.exit(main())
