"""The real trodo-python and posthog-python clients sending more than the server's per-user rate
limit allows at once: each must back off on 429 + Retry-After and deliver every event.

Usage: python rate_limited_flow.py HOST API_KEY EVENTS   (asserted by the Rust test hostile.rs)
"""

import sys

import trodo
from posthog import Posthog

host, api_key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
errors = []

client = trodo.TrodoClient(api_key, api_base=host, auto_instrument=False, on_error=errors.append)
user = client.for_user("busy-trodo-user")
for i in range(count):
    user.track("Burst", {"i": i})
client.shutdown()

ph = Posthog(api_key, host=host, on_error=lambda e, batch: errors.append(e), flush_interval=0.2, flush_at=5)
for i in range(count):
    ph.capture("Burst", distinct_id="busy-posthog-user", properties={"i": i})
ph.flush()
ph.shutdown()

if errors:
    print("ERRORS", [str(e) for e in errors], file=sys.stderr)
    sys.exit(1)
print("DONE", flush=True)
