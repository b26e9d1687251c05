"""A B2B session driven through the real, unmodified posthog-python client (v0 /batch/).

Usage: python posthog_flow.py HOST API_KEY   (asserted by the Rust test posthog_python.rs)
"""

import sys

from posthog import Posthog

host, api_key = sys.argv[1], sys.argv[2]
errors = []
ph = Posthog(api_key, host=host, on_error=lambda e, batch: errors.append(e), flush_interval=0.5)

ph.capture("Landing Page Viewed", distinct_id="anon-9c1d", properties={"utm_source": "ads"})
ph.alias(previous_id="anon-9c1d", distinct_id="grace@globex.io")
ph.set(distinct_id="grace@globex.io", properties={"name": "Grace Hopper", "plan": "pro"})
ph.set_once(distinct_id="grace@globex.io", properties={"signup": "2026-11-01"})
ph.set_once(distinct_id="grace@globex.io", properties={"signup": "1999-01-01"})
ph.group_identify("company", "globex", {"name": "Globex", "plan": "enterprise", "employees": 120})
ph.capture("Signed In", distinct_id="grace@globex.io", properties={"method": "sso"}, groups={"company": "globex"})
ph.capture("Chart Created", distinct_id="grace@globex.io", groups={"company": "globex", "team": "globex-data"})
ph.group_identify("company", "globex", {"employees": 130, "industry": "energy"})
ph.capture("Report Exported", distinct_id="grace@globex.io", properties={"format": "csv"})
ph.flush()
ph.shutdown()

if errors:
    print("ERRORS", [str(e) for e in errors], file=sys.stderr)
    sys.exit(1)
print("DONE", flush=True)
