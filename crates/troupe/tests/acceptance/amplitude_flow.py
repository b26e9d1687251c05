"""A B2B session driven through the real, unmodified amplitude-analytics client (HTTP API v2).

Usage: python amplitude_flow.py HOST API_KEY   (asserted by the Rust test amplitude_python.rs)
"""

import sys
import time

from amplitude import Amplitude, BaseEvent, Config, EventOptions, Identify

host, api_key = sys.argv[1], sys.argv[2]
failures = []


def callback(event, code, message=None):
    if code != 200:
        failures.append((event.event_type, code, message))


config = Config(server_url=f"{host}/2/httpapi", flush_queue_size=100, flush_interval_millis=100,
                min_id_length=1, callback=callback)
client = Amplitude(api_key, config)
lin = EventOptions(user_id="lin@umbrella.io", device_id="device-a1")


def step():
    # The client stamps milliseconds: keep consecutive calls apart so "newest first" is defined.
    time.sleep(0.005)


client.track(BaseEvent(event_type="Landing Page Viewed", device_id="device-a1", event_properties={"utm_source": "ads"}))
step()
client.track(BaseEvent(event_type="Signed In", user_id="lin@umbrella.io", device_id="device-a1",
                       event_properties={"method": "sso"}))
step()
client.identify(Identify().set("plan", "pro").set_once("signup", "2026-11-01"), lin)
step()
client.set_group("company", "umbrella", lin)
step()
client.group_identify("company", "umbrella", Identify().set("name", "Umbrella").set("plan", "enterprise"), lin)
step()
client.track(BaseEvent(event_type="Report Exported", user_id="lin@umbrella.io", device_id="device-a1",
                       event_properties={"format": "csv"}))
client.flush()
client.shutdown()

if failures:
    print("FAILURES", failures, file=sys.stderr)
    sys.exit(1)
print("DONE", flush=True)
