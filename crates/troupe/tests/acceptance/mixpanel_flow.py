"""A B2B session driven through the real, unmodified mixpanel-python client.

Usage: python mixpanel_flow.py HOST TOKEN SECRET   (asserted by the Rust test mixpanel_python.rs)
mixpanel-python builds https:// URLs from api_host; plain http needs the full URLs, as here.
"""

import sys

from mixpanel import Consumer, Mixpanel

host, token, secret = sys.argv[1], sys.argv[2], sys.argv[3]
consumer = Consumer(events_url=f"{host}/track", people_url=f"{host}/engage",
                    groups_url=f"{host}/groups", import_url=f"{host}/import")
mp = Mixpanel(token, consumer=consumer)

mp.track("anon-m1", "Landing Page Viewed", {"utm_source": "blog"})
# mp.alias() always posts to Mixpanel's own servers, whatever the consumer; the $identify event
# (Mixpanel's server-side identity merge) goes through the consumer like any event.
mp.track("margaret@hooli.io", "$identify", {"$identified_id": "margaret@hooli.io", "$anon_id": "anon-m1"})
# Mixpanel's membership: a person property named after the group key.
mp.people_set("margaret@hooli.io", {"$name": "Margaret", "plan": "pro", "company": ["hooli"]})
mp.group_set("company", "hooli", {"name": "Hooli", "plan": "enterprise", "employees": 500})
mp.track("margaret@hooli.io", "Signed In", {"method": "sso", "company": "hooli"})
mp.track("margaret@hooli.io", "Chart Created", {"chart_type": "bar"})
mp.people_union("margaret@hooli.io", {"company": ["endframe"]})
mp.group_union("company", "hooli", {"features": ["sso", "audit"]})
mp.group_remove("company", "hooli", {"features": "audit"})
mp.people_increment("margaret@hooli.io", {"logins": 2})
mp.track("margaret@hooli.io", "Report Exported", {"format": "pdf"})
mp.import_data(token, "margaret@hooli.io", "Old Login", 1700000000, {"method": "password"}, api_secret=secret)
print("DONE", flush=True)
