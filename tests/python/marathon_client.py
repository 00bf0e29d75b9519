"""The Python `marathon` client (0.13.0, unchanged) against meso's scheduler.

Run by tests/marathon_client.rs with MARATHON_URL set to a master of a
running cluster with one agent. Every call the client makes goes over real
HTTP; each step prints `ok <step>`, and any failure exits non-zero with the
client's own error.
"""

import collections
import collections.abc
import json
import os
import sys
import threading
import time

# marathon 0.13.0 uses collections.Iterable, gone since Python 3.10 (fixed
# upstream in an unreleased commit, ebb2ee3). This restores the alias the
# client expects; it changes nothing on the wire.
if not hasattr(collections, "Iterable"):
    collections.Iterable = collections.abc.Iterable

from marathon import MarathonClient  # noqa: E402
from marathon.models import MarathonApp, MarathonGroup, MarathonHealthCheck  # noqa: E402
from marathon.exceptions import NotFoundError, MarathonHttpError  # noqa: E402

URL = os.environ["MARATHON_URL"]
c = MarathonClient([URL], timeout=30)


def ok(step):
    print("ok", step, flush=True)


def wait(what, check, timeout=60):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = check()
            if last:
                return last
        except (NotFoundError, MarathonHttpError) as e:
            last = e
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def settled(app_id, n):
    def check():
        app = c.get_app(app_id, embed_tasks=True)
        done = app.tasks_running == n and len(app.tasks) == n and not app.deployments
        return app if done else None
    return wait("%s at %d running" % (app_id, n), check)


# -- events: a stream read on the side, from before the first change
events = []
stream_ready = threading.Event()


def read_events():
    try:
        for event in c.event_stream(raw=False):
            events.append(event)
            stream_ready.set()
    except Exception as e:  # the thread ends with the test
        events.append(e)
        stream_ready.set()


threading.Thread(target=read_events, daemon=True).start()
wait("the event stream attached", lambda: stream_ready.wait(0.1))
assert type(events[0]).__name__ == "MarathonEventStreamAttached", events
ok("event_stream attached")

assert c.ping().strip() in (b"pong", "pong"), c.ping()
ok("ping")
info = c.get_info()
assert info.name == "marathon" and info.elected is not None, info.__dict__
ok("get_info")
assert c.get_leader()["leader"], c.get_leader()
ok("get_leader")
metrics = c.get_metrics()
assert isinstance(metrics, dict), metrics
ok("get_metrics")

# -- apps
app = MarathonApp(cmd="sleep 600", cpus=0.01, mem=16, instances=2,
                  labels={"team": "meso"})
created = c.create_app("client-app", app)
assert created and created.id == "/client-app", created
ok("create_app")
running = settled("/client-app", 2)
assert all(t.state == "TASK_RUNNING" for t in running.tasks)
assert running.version and running.version_info.last_config_change_at
ok("get_app with tasks")
apps = c.list_apps(embed_tasks=True, label="team==meso")
assert [a.id for a in apps] == ["/client-app"], apps
ok("list_apps")

c.scale_app("/client-app", instances=3)
settled("/client-app", 3)
c.scale_app("/client-app", delta=-1)
settled("/client-app", 2)
ok("scale_app")

tasks = c.list_tasks("/client-app")
assert len(tasks) == 2 and all(t.app_id == "/client-app" for t in tasks), tasks
assert len(c.list_tasks()) >= 2
endpoints = c.list_endpoints()
assert len(endpoints) == 2, endpoints
ok("list_tasks")

killed = c.kill_task("/client-app", tasks[0].id, scale=True)
settled("/client-app", 1)
assert c.get_app("/client-app").instances == 1
ok("kill_task scale")

one = c.list_tasks("/client-app")[0]
assert c.kill_given_tasks([one.id]) is True
wait("a replacement task", lambda: [t for t in c.list_tasks("/client-app")
                                    if t.id != one.id and t.state == "TASK_RUNNING"])
ok("kill_given_tasks")

versions = c.list_versions("/client-app")
assert len(versions) >= 3, versions
first = c.get_version("/client-app", versions[-1])
assert first.instances == 2, first
ok("versions")

c.update_app("/client-app", MarathonApp(cmd="sleep 700", cpus=0.01, mem=16, instances=1))
restarted = wait("the update deployed",
                 lambda: (lambda a: a if a.cmd == "sleep 700" and not a.deployments
                          and a.tasks_running == 1 else None)(c.get_app("/client-app", embed_tasks=True)))
ok("update_app")
c.restart_app("/client-app")
settled("/client-app", 1)
ok("restart_app")
c.rollback_app("/client-app", versions[-1])
wait("the rollback", lambda: c.get_app("/client-app").cmd == "sleep 600")
ok("rollback_app")

# -- health: an app with a check; its health events parse (checked below)
c.create_app("checked", MarathonApp(
    cmd="sleep 600", cpus=0.01, mem=16, instances=1,
    health_checks=[MarathonHealthCheck(protocol="COMMAND", command="true",
                                       grace_period_seconds=30, interval_seconds=1,
                                       timeout_seconds=5, max_consecutive_failures=3,
                                       delay_seconds=0)]))
wait("the checked app healthy", lambda: c.get_app("/checked").tasks_healthy == 1)
checked = c.get_app("/checked", embed_tasks=True)
assert checked.health_checks[0].protocol == "COMMAND", checked.health_checks
assert checked.tasks[0].health_check_results[0].alive is True, checked.tasks[0]
c.delete_app("/checked", force=True)
ok("health checks")

# -- deployments, queue: an app too big to place stays deploying
c.create_app("too-big", MarathonApp(cmd="sleep 600", cpus=1000, mem=16, instances=1))
deps = wait("a deployment", lambda: [d for d in c.list_deployments()
                                     if "/too-big" in d.affected_apps])
ok("list_deployments")
queue = wait("the queue", lambda: [q for q in c.list_queue() if q.app.id == "/too-big"])
assert queue[0].count == 1
ok("list_queue")
c.reset_delay("/too-big")
ok("reset_delay")
c.delete_deployment(deps[0].id, force=True)
wait("the deployment gone", lambda: not [d for d in c.list_deployments() if d.id == deps[0].id])
ok("delete_deployment force")
c.delete_app("/too-big", force=True)
ok("delete_app")

# -- groups
group = MarathonGroup(id="/grp", apps=[
    MarathonApp(id="/grp/db", cmd="sleep 600", cpus=0.01, mem=16, instances=1),
    MarathonApp(id="/grp/web", cmd="sleep 600", cpus=0.01, mem=16, instances=1,
                dependencies=["/grp/db"]),
])
c.create_group(group)
settled("/grp/web", 1)
g = c.get_group("/grp")
assert sorted(a.id for a in g.apps) == ["/grp/db", "/grp/web"], g
assert any(x.id == "/grp" for x in c.list_groups())
ok("groups")
c.scale_group("/grp", 2)
settled("/grp/db", 2)
ok("scale_group")
c.delete_group("/grp", force=True)
wait("the group gone", lambda: not [a for a in c.list_apps() if a.id.startswith("/grp/")])
ok("delete_group")

# -- event subscriptions (HTTP callbacks)
c.create_event_subscription("http://127.0.0.1:9/callback")
assert "http://127.0.0.1:9/callback" in c.list_event_subscriptions()
c.delete_event_subscription("http://127.0.0.1:9/callback")
assert "http://127.0.0.1:9/callback" not in c.list_event_subscriptions()
ok("event_subscriptions")

c.delete_app("/client-app", force=True)
wait("the app gone", lambda: not [a for a in c.list_apps() if a.id == "/client-app"])

# -- the events the stream saw, all parsed by the client's own models
errors = [e for e in events if isinstance(e, Exception)]
assert not errors, errors
kinds = set(type(e).__name__ for e in events)
for wanted in ["MarathonStatusUpdateEvent", "MarathonDeploymentInfo",
               "MarathonDeploymentSuccess", "MarathonApiPostEvent",
               "MarathonDeploymentStepSuccess", "MarathonAppTerminatedEvent",
               "MarathonInstanceChangedEvent", "MarathonHealthStatusChangedEvent",
               "MarathonInstanceHealthChangedEvent"]:
    assert wanted in kinds, (wanted, sorted(kinds))
health = [e for e in events if type(e).__name__ == "MarathonHealthStatusChangedEvent"]
assert any(e.app_id == "/checked" and e.alive is True and e.task_id for e in health), \
    [e.__dict__ for e in health]
instance = [e for e in events if type(e).__name__ == "MarathonInstanceHealthChangedEvent"]
assert any(e.run_spec_id == "/checked" and e.healthy is True for e in instance), \
    [e.__dict__ for e in instance]
ok("events parsed: %s" % ", ".join(sorted(kinds)))
print("all ok")
