"""A B2B session driven through the real, unmodified segment-analytics-python client.

Usage: python segment_flow.py HOST WRITE_KEY   (asserted by the Rust test segment_python.rs)
"""

import sys
import time

from segment.analytics.client import Client

host, write_key = sys.argv[1], sys.argv[2]
errors = []
client = Client(write_key, host=host, on_error=lambda e, batch: errors.append(e), upload_interval=0.2)


def step():
    # Segment stamps milliseconds: keep consecutive calls apart so "newest first" is defined.
    time.sleep(0.005)


client.page(anonymous_id="anon-5e", name="Pricing", properties={"url": "/pricing"})
step()
client.identify(user_id="linus@initech.io", anonymous_id="anon-5e", traits={"name": "Linus", "plan": "team"})
step()
client.group(user_id="linus@initech.io", group_id="initech", traits={"name": "Initech", "plan": "enterprise", "employees": 80})
step()
client.track(user_id="linus@initech.io", event="Signed In", properties={"method": "sso"})
step()
client.track(user_id="linus@initech.io", event="Invoice Sent", context={"groupId": "initrode"})
step()
client.group(user_id="linus@initech.io", group_id="initech", traits={"employees": 95})
step()
client.track(user_id="linus@initech.io", event="Report Exported", properties={"format": "pdf"})
step()
# A multi-account user switches workspace (the Datafly document's group() on every switch).
client.group(user_id="linus@initech.io", group_id="initrode", traits={"name": "Initrode"})
step()
client.track(user_id="linus@initech.io", event="Workspace Opened")
client.flush()
client.shutdown()

if errors:
    print("ERRORS", [str(e) for e in errors], file=sys.stderr)
    sys.exit(1)
print("DONE", flush=True)
