"""A SaaS login flow driven through the real, unmodified trodo-python client.

Usage: python trodo_flow.py API_BASE SITE_ID

The Rust test `trodo_python.rs` starts troupe, runs this, and asserts through the read API what
must have landed. Lines `RESULT <name> <json>` report what the client got back; any error the
client reports makes the script exit non-zero.
"""

import json
import sys

import trodo

api_base, site_id = sys.argv[1], sys.argv[2]
errors = []


def result(name, value):
    print("RESULT", name, json.dumps(value, sort_keys=True), flush=True)


client = trodo.TrodoClient(site_id, api_base=api_base, auto_instrument=False, on_error=errors.append)

# An anonymous visitor lands, then signs in: identify merges the anonymous id into the user.
visitor = client.for_user("anon-7f3a")
visitor.track("Landing Page Viewed", {"utm_source": "newsletter"})
result("identify_first", visitor.identify("ada@acme.io"))

ada = client.for_user("ada@acme.io")
ada.people.set({"name": "Ada Lovelace", "plan": "pro", "temp": 1})
ada.people.set_once({"signup_date": "2026-11-01"})
ada.people.set_once({"signup_date": "1999-01-01"})
ada.people.increment("logins", 1)
ada.people.increment("logins", 1)
ada.people.union("roles", ["admin", "billing"])
ada.people.union("roles", ["admin", "owner"])
ada.people.append("visits", ["home", "home"])
ada.people.remove("roles", ["billing"])
ada.people.unset(["temp"])
ada.people.track_charge(10.0, {"sku": "starter"})
ada.people.clear_charges()
ada.people.track_charge(49.0, {"sku": "pro"})

# Group association: teams she belongs to, the company, and the team she works in right now.
ada.add_group("team", "acme-eng")
ada.add_group("team", "acme-data")
ada.add_group("team", "acme-eng")  # idempotent
ada.set_group("company", "acme")
ada.set_group("active_team", "acme-eng")
ada.track("Signed In", {"method": "sso"})

ada.set_group("active_team", "acme-data")
ada.track("Chart Created", {"chart_type": "funnel"})

# Group profile operations.
acme = ada.get_group("company", "acme")
acme.set({"name": "Acme Inc", "plan": "enterprise", "employees": 250, "temp": "x"})
acme.set_once({"created": "2020-05-01"})
acme.set_once({"created": "2099-01-01"})
acme.increment("seats", 5)
acme.increment("seats", 3)
acme.union("features", ["sso", "audit"])
acme.union("features", ["sso", "api"])
acme.remove("features", "audit")
acme.append("milestones", "pilot")
acme.append("milestones", "pilot")
acme.unset("temp")
ada.get_group("team", "acme-eng").set({"name": "Acme Engineering"})

ada.remove_group("team", "acme-data")
ada.track("Report Exported", {"format": "csv"})

# A second member of the company, with no team.
bob = client.for_user("bob@acme.io")
bob.set_group("company", "acme")
bob.track("Signed In", {"method": "password"})

# A backend upserts a new user with what it knows; fixed properties only where a server can know
# them (location), the browser's observations come back skipped. Then the wallet she connected.
dana_fixed = {"last_location_country": "India", "first_location_city": "Pune", "browser": "Chrome"}
result("upsert_new", client.upsert_user("dana@acme.io", properties={"plan": "team"},
                                        set_once={"signup_date": "2026-11-20"}, fixed_properties=dana_fixed))
result("upsert_again", client.upsert_user("dana@acme.io", fixed_properties={"first_location_city": "Mumbai"}))
result("wallet", client.wallet_address("dana@acme.io", "0xA11CE"))

# A user created and then deleted.
temp = client.for_user("temp@acme.io")
temp.people.set({"name": "Temporary"})
temp.people.delete_user()

# A browser on a new device identifies and hydrates its group state from the answer.
result("identify_again", client.for_user("ada@acme.io").identify("ada@acme.io"))

# The batched sender posts events to /api/events/bulk.
batched = trodo.TrodoClient(site_id, api_base=api_base, auto_instrument=False, on_error=errors.append,
                            batch_enabled=True, batch_size=50, batch_flush_interval=60)
carol = batched.for_user("carol@globex.io")
carol.set_group("company", "globex")
for i in range(3):
    carol.track("Dashboard Viewed", {"n": i})
batched.flush()
batched.shutdown()
client.flush()
client.shutdown()

if errors:
    print("ERRORS", [str(e) for e in errors], file=sys.stderr)
    sys.exit(1)
print("DONE", flush=True)
