"""The session of same_session.rs, sent through the real trodo-python client.

Usage: python same_session_trodo.py API_BASE SITE_ID
"""

import sys

import trodo

api_base, site_id = sys.argv[1], sys.argv[2]
errors = []
client = trodo.TrodoClient(site_id, api_base=api_base, auto_instrument=False, on_error=errors.append)

# The same session as same_session.rs's SESSION and same_session.cjs: three users at two
# companies, a team, profiles, and their events.
for user, company in [("ada", "acme"), ("bob", "acme"), ("cy", "globex")]:
    u = client.for_user(user)
    u.set_group("company", company)
    u.people.set({"role": "admin" if user == "ada" else "member"})
client.for_user("ada").add_group("team", "acme-eng")
client.for_user("ada").get_group("company", "acme").set({"plan": "pro"})
client.for_user("cy").get_group("company", "globex").set({"plan": "free"})
for user, event, props in [
    ("ada", "Signed In", {"method": "sso"}),
    ("ada", "Report Exported", {"format": "pdf"}),
    ("ada", "Report Exported", {"format": "csv"}),
    ("bob", "Signed In", {"method": "password"}),
    ("cy", "Signed In", {"method": "google"}),
    ("cy", "Chart Created", {"chart_type": "line"}),
]:
    client.for_user(user).track(event, props)
client.shutdown()
if errors:
    print("client errors:", errors, file=sys.stderr)
    sys.exit(1)
