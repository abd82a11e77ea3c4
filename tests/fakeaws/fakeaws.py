#!/usr/bin/env python3
"""Fake AWS for asg-agent tests: moto + fault proxy + IMDSv2 fake + control API.

Everything runs in ONE process, every server on 127.0.0.1 with a kernel-chosen
free port:

  moto     moto 5.2.1 (werkzeug app) serving EC2, Auto Scaling, S3, ELBv2, IAM,
           STS, patched in-process with lifecycle-hook behaviour
           (Pending:Wait, CompleteLifecycleAction, heartbeats, timeouts,
           Terminating:Wait).
  aws      fault-injecting HTTP/1.1 keep-alive proxy in front of moto.  The agent
           under test uses this one (AWS_ENDPOINT_URL).
  imds     IMDSv2 fake with the real token rules; credentials come from moto STS.
  control  JSON API for tests (see README.md next to this file).

Usage:
  python3 fakeaws.py --ports-file PATH [--auth on|off] [--log FILE]

When everything is up, PATH is written atomically as JSON
  {"moto": P, "aws": P, "imds": P, "control": P, "pid": PID, "admin": {...}, ...}
and the process runs until SIGTERM/SIGINT (or until its parent dies).
"""

from __future__ import annotations

import time

T_IMPORT = time.monotonic()

import argparse
import base64
import collections
import datetime as dt
import email.utils
import fnmatch
import http.client
import http.server
import itertools
import json
import logging
import os
import re
import signal
import socket
import struct
import sys
import threading
import urllib.parse
import uuid
from xml.sax.saxutils import escape as xml_escape

# Keep moto/boto3 inside this process away from whatever AWS config the
# caller has (profiles, endpoint overrides, CA bundles ...).
for _k in list(os.environ):
    if _k.startswith("AWS_"):
        del os.environ[_k]
os.environ["AWS_CONFIG_FILE"] = "/dev/null"
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
for _k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_k, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "*"

import boto3  # noqa: E402
import boto3.session  # noqa: E402
import botocore.config  # noqa: E402

# Startup speed: moto calls boto3.Session().get_available_regions() at import
# time and for every backend it creates; each fresh Session re-reads
# botocore's endpoint data (~0.2 s a time).  The answer only depends on the
# installed botocore, so compute it once on a shared session.
_orig_get_available_regions = boto3.session.Session.get_available_regions
_regions_session = boto3.session.Session()
_regions_cache: dict = {}


def _cached_get_available_regions(self, service_name, partition_name="aws", allow_non_regional=False):
    key = (service_name, partition_name, allow_non_regional)
    if key not in _regions_cache:
        _regions_cache[key] = _orig_get_available_regions(
            _regions_session, service_name, partition_name, allow_non_regional
        )
    return list(_regions_cache[key])


boto3.session.Session.get_available_regions = _cached_get_available_regions
from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    create_backend_app,
)
from moto.core.responses import EmptyResult  # noqa: E402
import moto.autoscaling.models as asg_models  # noqa: E402
import moto.autoscaling.responses as asg_responses  # noqa: E402
from moto.autoscaling.exceptions import ValidationError  # noqa: E402
from moto.elb.exceptions import LoadBalancerNotFoundError  # noqa: E402
from moto.ec2.models import ec2_backends  # noqa: E402
from moto.s3.models import FakeKey  # noqa: E402

log = logging.getLogger("fakeaws")

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"
ADMIN_USER = "admin"
ROLE_NAME = "asg-agent-instance"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"

# moto is not thread-safe; every moto request and every piece of code here
# that touches moto models holds this lock.
MOTO_LOCK = threading.RLock()


def utc_iso(ts: float | None = None) -> str:
    return dt.datetime.fromtimestamp(ts if ts is not None else time.time(), dt.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


# ---------------------------------------------------------------------------
# Request log (proxy + IMDS), readable through GET /requests
# ---------------------------------------------------------------------------


class RequestLog:
    """Requests are logged when they finish but listed in the order they
    arrived: threads answering two requests in a row can finish out of order."""

    def __init__(self, maxlen: int = 20000):
        self._lock = threading.Lock()
        self._entries: collections.deque = collections.deque(maxlen=maxlen)
        self._seq = itertools.count()

    def arrived(self) -> int:
        with self._lock:
            return next(self._seq)

    def add(self, **entry) -> None:
        entry.setdefault("time", time.time())
        with self._lock:
            self._entries.append(entry)

    def list(self) -> list:
        with self._lock:
            return sorted(self._entries, key=lambda e: e.get("seq", -1))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


REQUESTS = RequestLog()
# Proxy requests in progress (entry dicts updated live: upstream_bytes read
# from moto, bytes sent to the client), for streaming checks: GET /inflight
INFLIGHT: dict[int, dict] = {}


# ---------------------------------------------------------------------------
# Lifecycle hooks, patched into moto.autoscaling
# ---------------------------------------------------------------------------

# States that count towards the group's capacity.  moto counts only
# "InService", which would make every SetDesiredCapacity launch extra
# instances while others wait in Pending:Wait.
ACTIVE_STATES = {"Pending", "Pending:Wait", "Pending:Proceed", "InService"}


class PendingAction:
    """One lifecycle action waiting for CompleteLifecycleAction (or timeout)."""

    def __init__(self, backend, group_name, hook, instance_id, transition):
        self.backend = backend
        self.group_name = group_name
        self.hook_name = hook.name
        self.transition = transition
        self.instance_id = instance_id
        self.token = str(uuid.uuid4())
        self.heartbeat_timeout = int(hook.heartbeat_timeout or 3600)
        self.default_result = (hook.default_result or "ABANDON").upper()
        self.started = time.time()
        self.deadline = time.monotonic() + self.heartbeat_timeout

    def to_json(self) -> dict:
        return {
            "instance_id": self.instance_id,
            "group": self.group_name,
            "hook": self.hook_name,
            "transition": self.transition,
            "token": self.token,
            "started": self.started,
            "heartbeat_timeout": self.heartbeat_timeout,
            "default_result": self.default_result,
            "seconds_left": round(self.deadline - time.monotonic(), 3),
        }


class Lifecycle:
    """Lifecycle-hook state machine grafted onto moto's Auto Scaling models.

    Launch:    new instance -> Pending:Wait (if the group has LAUNCHING hooks)
               all hooks CONTINUE -> InService (+ target group registration)
               any hook ABANDON   -> terminated, group launches a replacement
    Terminate: scale-in / TerminateInstanceInAutoScalingGroup with TERMINATING
               hooks -> Terminating:Wait; completion (either result) ->
               terminated and removed from the group.
    A hook that gets neither completion nor heartbeat for HeartbeatTimeout
    seconds applies its DefaultResult (recorded as kind "timeout").
    """

    def __init__(self):
        # (instance_id, hook_name) -> PendingAction
        self.pending: dict[tuple[str, str], PendingAction] = {}
        # (instance_id, transition) -> results of hooks already completed
        self.done_results: dict[tuple[str, str], list[str]] = {}
        self.events: list[dict] = []
        self.force_terminate = False  # set while DeleteAutoScalingGroup runs
        # EnterStandby's drain (POST /standby-drain): 0 goes to Standby at once, as moto
        # does; S > 0 holds EnteringStandby for S seconds, as a load balancer's draining does.
        self.standby_drain = 0.0
        self.entering: dict = {}  # instance_id -> (its group, when it reaches Standby)

    # -- helpers ----------------------------------------------------------
    @staticmethod
    def hooks_for(group, transition):
        backend = group.autoscaling_backend
        return [
            h
            for h in backend.lifecycle_hooks.values()
            if h.auto_scaling_group_name == group.name and h.lifecycle_transition == transition
        ]

    @staticmethod
    def find_state(backend, group_name, instance_id):
        group = backend.autoscaling_groups.get(group_name)
        if group is None:
            return None, None
        for st in group.instance_states:
            if st.instance.id == instance_id:
                return group, st
        return group, None

    def record(self, **ev) -> None:
        ev.setdefault("time", time.time())
        ev["iso"] = utc_iso(ev["time"])
        self.events.append(ev)
        log.info("lifecycle %s", ev)

    def begin(self, group, state, transition, hooks) -> None:
        state.lifecycle_state = "Pending:Wait" if transition == LAUNCHING else "Terminating:Wait"
        self.done_results.pop((state.instance.id, transition), None)
        for hook in hooks:
            pa = PendingAction(group.autoscaling_backend, group.name, hook, state.instance.id, transition)
            self.pending[(state.instance.id, hook.name)] = pa
            self.record(
                kind="start",
                instance_id=pa.instance_id,
                group=group.name,
                hook=hook.name,
                transition=transition,
                token=pa.token,
                ok=True,
            )

    # -- moto patch entry points --------------------------------------------
    def on_launch(self, group, new_states) -> None:
        hooks = self.hooks_for(group, LAUNCHING)
        if not hooks:
            return
        for st in new_states:
            self.begin(group, st, LAUNCHING, hooks)

    def terminate_now(self, group, state) -> None:
        """Remove from the group and terminate the EC2 instance."""
        backend = group.autoscaling_backend
        iid = state.instance.id
        group.instance_states = [s for s in group.instance_states if s is not state]
        for key in [k for k in self.pending if k[0] == iid]:
            del self.pending[key]
        try:
            backend.ec2_backend.terminate_instances([iid])
        except Exception as e:  # already gone
            log.warning("terminate %s: %s", iid, e)
        try:
            backend.elbv2_backend.notify_terminate_instances([iid])
        except Exception as e:
            log.warning("elbv2 notify %s: %s", iid, e)
        if group.name in backend.autoscaling_groups:
            backend.update_attached_elbs(group.name)
            backend.update_attached_target_groups(group.name)

    def start_termination(self, group, state) -> bool:
        """Terminate `state`, via Terminating:Wait if the group has hooks.

        Returns True if the instance now waits in Terminating:Wait."""
        hooks = [] if self.force_terminate else self.hooks_for(group, TERMINATING)
        if not hooks:
            self.terminate_now(group, state)
            return False
        self.begin(group, state, TERMINATING, hooks)
        backend = group.autoscaling_backend
        if group.name in backend.autoscaling_groups:
            backend.update_attached_elbs(group.name)
            backend.update_attached_target_groups(group.name)  # deregisters it
        return True

    # -- the API ----------------------------------------------------------
    def _lookup(self, backend, group_name, hook_name, instance_id, token):
        if token:
            for pa in self.pending.values():
                if pa.token == token and pa.backend is backend:
                    if (group_name and pa.group_name != group_name) or (hook_name and pa.hook_name != hook_name):
                        break
                    return pa
            raise ValidationError(f"No active Lifecycle Action found with token {token}")
        if not instance_id:
            raise ValidationError("Either InstanceId or LifecycleActionToken must be specified")
        pa = self.pending.get((instance_id, hook_name or ""))
        if pa is None or pa.backend is not backend or (group_name and pa.group_name != group_name):
            raise ValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")
        group, st = self.find_state(backend, pa.group_name, pa.instance_id)
        if st is None:  # instance left the group by other means
            self.pending.pop((pa.instance_id, pa.hook_name), None)
            raise ValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")
        return pa

    def complete(self, backend, group_name, hook_name, instance_id, token, result) -> None:
        ev = dict(
            kind="complete",
            group=group_name,
            hook=hook_name,
            instance_id=instance_id,
            token=token,
            result=result,
            by="token" if token else "instance-id",
        )
        try:
            if (result or "").upper() not in ("CONTINUE", "ABANDON"):
                raise ValidationError(
                    f"Invalid value '{result}' for LifecycleActionResult: must be CONTINUE or ABANDON"
                )
            pa = self._lookup(backend, group_name, hook_name, instance_id, token)
        except ValidationError as e:
            self.record(ok=False, error=e.message, **ev)
            raise
        ev.update(instance_id=pa.instance_id, hook=pa.hook_name, group=pa.group_name, transition=pa.transition)
        self.record(ok=True, **ev)
        self._resolve(pa, result.upper())

    def heartbeat(self, backend, group_name, hook_name, instance_id, token) -> None:
        ev = dict(
            kind="heartbeat",
            group=group_name,
            hook=hook_name,
            instance_id=instance_id,
            token=token,
            result=None,
            by="token" if token else "instance-id",
        )
        try:
            pa = self._lookup(backend, group_name, hook_name, instance_id, token)
        except ValidationError as e:
            self.record(ok=False, error=e.message, **ev)
            raise
        pa.deadline = time.monotonic() + pa.heartbeat_timeout
        ev.update(instance_id=pa.instance_id, hook=pa.hook_name, group=pa.group_name, transition=pa.transition)
        self.record(ok=True, **ev)

    def _resolve(self, pa: PendingAction, result: str) -> None:
        """One hook of an instance is done; move the instance on if all are."""
        self.pending.pop((pa.instance_id, pa.hook_name), None)
        key = (pa.instance_id, pa.transition)
        self.done_results.setdefault(key, []).append(result)
        if any(k[0] == pa.instance_id and v.transition == pa.transition for k, v in self.pending.items()):
            return  # other hooks of the same transition still pending
        results = self.done_results.pop(key)
        group, st = self.find_state(pa.backend, pa.group_name, pa.instance_id)
        if st is None:
            return
        backend = group.autoscaling_backend
        if pa.transition == LAUNCHING:
            if "ABANDON" in results:
                self.terminate_now(group, st)
                # The group is now below desired capacity: launch a replacement
                # (which goes through the launch hook again).
                group.set_desired_capacity(group.desired_capacity)
            else:
                st.lifecycle_state = "InService"
                backend.update_attached_elbs(group.name)
                backend.update_attached_target_groups(group.name)
        else:
            # Terminating:Proceed -> Terminated, whatever the result.
            self.terminate_now(group, st)

    def sweep(self) -> None:
        """Apply DefaultResult to actions whose heartbeat timeout passed; end the
        EnteringStandby drains that are due."""
        now = time.monotonic()
        for iid, (group, due) in list(self.entering.items()):
            if now < due:
                continue
            del self.entering[iid]
            for st in group.instance_states:
                if st.instance.id == iid and st.lifecycle_state == "EnteringStandby":
                    st.lifecycle_state = "Standby"
        for pa in list(self.pending.values()):
            if (pa.instance_id, pa.hook_name) not in self.pending:
                continue
            group, st = self.find_state(pa.backend, pa.group_name, pa.instance_id)
            if st is None:
                self.pending.pop((pa.instance_id, pa.hook_name), None)
                continue
            if now >= pa.deadline:
                self.record(
                    kind="timeout",
                    instance_id=pa.instance_id,
                    group=pa.group_name,
                    hook=pa.hook_name,
                    transition=pa.transition,
                    token=pa.token,
                    result=pa.default_result,
                    ok=True,
                    by="timeout",
                )
                self._resolve(pa, pa.default_result)

    def snapshot(self) -> dict:
        return {"events": list(self.events), "pending": [p.to_json() for p in self.pending.values()]}


LIFECYCLE = Lifecycle()


def install_s3_value_cache() -> None:
    """moto reads an object's whole body out of its spooled file for every GET,
    ranged ones too, inside the one moto lock: a 164 MiB artifact fetched in 4 MiB
    ranges cost 41 whole reads (about 4 s), which real S3 does not. Keep each
    key's bytes once read; moto only ever replaces a body through the setter."""
    prop = FakeKey.value

    def get(self):
        body = self.__dict__.get("_fake_body")
        if body is None:
            body = self.__dict__["_fake_body"] = prop.fget(self)
        return body

    def set_(self, new_value):
        self.__dict__.pop("_fake_body", None)
        prop.fset(self, new_value)

    FakeKey.value = property(get, set_)


def install_cloudwatch_alarm_types() -> None:
    """AWS's DescribeAlarms answers metric alarms only unless AlarmTypes names
    CompositeAlarm too; moto answers both kinds whatever is asked, and has no
    PutCompositeAlarm (its PutMetricAlarm stores an AlarmRule as a composite)."""
    import moto.cloudwatch.responses as cw_responses
    from moto.core.responses import ActionResult

    R = cw_responses.CloudWatchResponse
    orig_describe = R.describe_alarms

    def describe_alarms(self):
        types = self._get_param("AlarmTypes", []) or ["MetricAlarm"]
        res = orig_describe(self).result
        return ActionResult({k: (v if k[:-len("Alarms")] + "Alarm" in types else [])
                             for k, v in res.items()})

    R.describe_alarms = describe_alarms
    R.put_composite_alarm = R.put_metric_alarm


def install_autoscaling_tag_pages() -> None:
    """AWS's Auto Scaling DescribeTags answers MaxRecords tags at a time (50
    unless asked, at most 100) with a NextToken for the rest; moto answers
    every tag at once, so a client that never pages passed against it."""
    from moto.core.responses import ActionResult

    R = asg_responses.AutoScalingResponse
    orig_describe = R.describe_tags

    def describe_tags(self):
        tags = orig_describe(self).result["Tags"]
        size = min(int(self._get_param("MaxRecords") or 50), 100)
        token = self._get_param("NextToken")
        start = int(token) if token and token.isdigit() else 0
        nxt = str(start + size) if start + size < len(tags) else None
        return ActionResult({"Tags": tags[start:start + size], "NextToken": nxt})

    R.describe_tags = describe_tags


def install_moto_patches() -> None:
    """Monkeypatch moto.autoscaling (models + responses), see Lifecycle."""
    G = asg_models.FakeAutoScalingGroup
    B = asg_models.AutoScalingBackend
    R = asg_responses.AutoScalingResponse

    def active_instances(self):
        return [x for x in self.instance_states if x.lifecycle_state in ACTIVE_STATES]

    G.active_instances = active_instances

    orig_replace = G.replace_autoscaling_group_instances

    def replace_autoscaling_group_instances(self, count_needed, propagated_tags):
        before = {id(s) for s in self.instance_states}
        orig_replace(self, count_needed, propagated_tags)
        LIFECYCLE.on_launch(self, [s for s in self.instance_states if id(s) not in before])

    G.replace_autoscaling_group_instances = replace_autoscaling_group_instances

    orig_set_desired = G.set_desired_capacity

    def set_desired_capacity(self, new_capacity):
        # Scale-in with TERMINATING hooks: victims go to Terminating:Wait
        # instead of disappearing.  Everything else: moto's own code.
        active = self.active_instances()
        desired = self.min_size if new_capacity is None else new_capacity
        if (
            LIFECYCLE.force_terminate
            or self.mixed_instances_policy
            or desired is None
            or len(active) <= desired
            or not LIFECYCLE.hooks_for(self, TERMINATING)
        ):
            return orig_set_desired(self, new_capacity)
        self.desired_capacity = desired
        victims = [s for s in active if not s.protected_from_scale_in][: len(active) - desired]
        for st in victims:
            LIFECYCLE.start_termination(self, st)
        if self.name in self.autoscaling_backend.autoscaling_groups:
            self.autoscaling_backend.update_attached_elbs(self.name)
            self.autoscaling_backend.update_attached_target_groups(self.name)

    G.set_desired_capacity = set_desired_capacity

    def balancer_changes(backend, group, have):
        """(add, drop): what makes a balancer's members from `group` its
        InService instances.  Only this group's are dropped: two groups may
        share a balancer."""
        want = {s.instance.id for s in group.instance_states if s.lifecycle_state == "InService"}
        members = {s.instance.id for s in group.instance_states}
        drop = []
        for iid in sorted(have - want):
            inst = backend.ec2_backend.get_instance_by_id(iid) if iid.startswith("i-") else None
            if iid in members or (inst is not None and getattr(inst, "autoscaling_group", None) is group):
                drop.append(iid)
        return sorted(want - have), drop

    def update_attached_target_groups(self, group_name):
        # moto registers every instance of the group, including Pending:Wait
        # ones, and never deregisters.  AWS registers only InService
        # instances and deregisters Standby/Terminating ones.
        group = self.autoscaling_groups[group_name]
        if not group.target_group_arns:
            return
        for tg in self.elbv2_backend.describe_target_groups(
            target_group_arns=group.target_group_arns, load_balancer_arn=None, names=None
        ):
            add, drop = balancer_changes(self, group, set(tg.targets))
            if add:
                self.elbv2_backend.register_targets(tg.arn, [{"Id": i, "Port": tg.port} for i in add])
            if drop:
                self.elbv2_backend.deregister_targets(tg.arn, [{"Id": i} for i in drop])

    B.update_attached_target_groups = update_attached_target_groups

    def update_attached_elbs(self, group_name):
        # The same for Classic Load Balancers (moto's own registers Pending:Wait
        # and Standby instances too).
        group = self.autoscaling_groups[group_name]
        if not group.load_balancer_names:
            return
        try:
            lbs = self.elb_backend.describe_load_balancers(names=group.load_balancer_names)
        except LoadBalancerNotFoundError:  # deleted before its group, as moto allows
            return
        for lb in lbs:
            add, drop = balancer_changes(self, group, set(lb.instance_autoscaling_ids))
            if add:
                self.elb_backend.register_instances(lb.name, add, from_autoscaling=True)
            if drop:
                self.elb_backend.deregister_instances(lb.name, drop, from_autoscaling=True)

    B.update_attached_elbs = update_attached_elbs

    orig_terminate_instance = B.terminate_instance

    def terminate_instance(self, instance_id, should_decrement):
        state = next(
            (s for g in self.autoscaling_groups.values() for s in g.instance_states if s.instance.id == instance_id),
            None,
        )
        if state is None:
            raise ValidationError(f"Instance Id not found - No managed instance found for instance ID: {instance_id}")
        group = state.auto_scaling_group
        if not LIFECYCLE.hooks_for(group, TERMINATING):
            return orig_terminate_instance(self, instance_id, should_decrement)
        original_size = group.desired_capacity
        LIFECYCLE.start_termination(group, state)
        if should_decrement:
            group.desired_capacity = (group.desired_capacity or 0) - 1
        group.set_desired_capacity(group.desired_capacity)  # replacement if not decremented
        return asg_models.TerminateInstanceActivity(state.instance, original_size)

    B.terminate_instance = terminate_instance

    orig_enter_standby = B.enter_standby_instances

    def enter_standby_instances(self, group_name, instance_ids, should_decrement):
        # AWS refuses a decrement below MinSize (EnterStandby API reference); moto does not.
        group = self.autoscaling_groups[group_name]
        n = sum(1 for s in group.instance_states if s.instance.id in instance_ids)
        desired = group.desired_capacity or 0
        if should_decrement and desired - n < group.min_size:
            raise ValidationError(
                f"AutoScalingGroup {group_name} has min-size={group.min_size}, "
                f"max-size={group.max_size}, and desired-capacity={desired}. You requested "
                f"to move {n} instances to Standby with ShouldDecrementDesiredCapacity, "
                f"which would leave a desired-capacity of {desired - n}, below min-size "
                f"{group.min_size}.")
        for st in group.instance_states:  # AWS takes only InService instances
            if st.instance.id in instance_ids and st.lifecycle_state != "InService":
                raise ValidationError(f"The instance {st.instance.id} is not in InService.")
        out = orig_enter_standby(self, group_name, instance_ids, should_decrement)
        if LIFECYCLE.standby_drain > 0:
            for st in group.instance_states:
                if st.instance.id in instance_ids and st.lifecycle_state == "Standby":
                    st.lifecycle_state = "EnteringStandby"
                    LIFECYCLE.entering[st.instance.id] = (
                        group, time.monotonic() + LIFECYCLE.standby_drain)
        return out

    B.enter_standby_instances = enter_standby_instances

    orig_exit_standby = B.exit_standby_instances

    def exit_standby_instances(self, group_name, instance_ids):
        # AWS takes only instances in Standby (moto moves any it is given).
        group = self.autoscaling_groups[group_name]
        for st in group.instance_states:
            if st.instance.id in instance_ids and st.lifecycle_state != "Standby":
                raise ValidationError(f"The instance {st.instance.id} is not in Standby.")
        return orig_exit_standby(self, group_name, instance_ids)

    B.exit_standby_instances = exit_standby_instances

    orig_delete_group = B.delete_auto_scaling_group

    def delete_auto_scaling_group(self, group_name):
        LIFECYCLE.force_terminate = True
        try:
            return orig_delete_group(self, group_name)
        finally:
            LIFECYCLE.force_terminate = False
            for key in [k for k, v in LIFECYCLE.pending.items() if v.group_name == group_name]:
                del LIFECYCLE.pending[key]

    B.delete_auto_scaling_group = delete_auto_scaling_group

    # --- the two API actions moto lacks (it answers 500 NotImplemented) ---
    def complete_lifecycle_action(self):
        LIFECYCLE.complete(
            self.autoscaling_backend,
            group_name=self._get_param("AutoScalingGroupName"),
            hook_name=self._get_param("LifecycleHookName"),
            instance_id=self._get_param("InstanceId"),
            token=self._get_param("LifecycleActionToken"),
            result=self._get_param("LifecycleActionResult"),
        )
        return EmptyResult()

    def record_lifecycle_action_heartbeat(self):
        LIFECYCLE.heartbeat(
            self.autoscaling_backend,
            group_name=self._get_param("AutoScalingGroupName"),
            hook_name=self._get_param("LifecycleHookName"),
            instance_id=self._get_param("InstanceId"),
            token=self._get_param("LifecycleActionToken"),
        )
        return EmptyResult()

    # moto dispatches on inspect.isfunction members of the class.
    R.complete_lifecycle_action = complete_lifecycle_action
    R.record_lifecycle_action_heartbeat = record_lifecycle_action_heartbeat


class NoDelayHandler(WSGIRequestHandler):
    """moto's server writes an answer's headers and body apart: without TCP_NODELAY,
    Nagle holds the body until the proxy's delayed ACK, about 40 ms a request."""

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class LockedApp:
    """WSGI wrapper: one moto request at a time (moto is not thread-safe).

    moto builds whole response bodies inside the view, so the lock is held
    only while the body is computed, not while it is sent."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        with MOTO_LOCK:
            return self.app(environ, start_response)


# ---------------------------------------------------------------------------
# Tag delay: hide a tag key from the agent's view until a deadline
# ---------------------------------------------------------------------------


class TagDelays:
    def __init__(self):
        self._lock = threading.Lock()
        self._rules: dict[str, dict] = {}  # key -> {"until": monotonic|inf, "scope": ...}

    def set(self, key: str, seconds: float, scope: str = "both") -> None:
        with self._lock:
            if seconds == 0:
                self._rules.pop(key, None)
                return
            until = float("inf") if seconds < 0 else time.monotonic() + seconds
            self._rules[key] = {"until": until, "scope": scope, "set_at": time.time(), "seconds": seconds}

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def hidden(self, scope: str) -> list[str]:
        """Keys currently hidden for scope "instance" or "group"."""
        now = time.monotonic()
        with self._lock:
            return [k for k, r in self._rules.items() if r["until"] > now and r["scope"] in ("both", scope)]

    def list(self) -> list:
        now = time.monotonic()
        with self._lock:
            return [
                {
                    "key": k,
                    "scope": r["scope"],
                    "seconds": r["seconds"],
                    "remaining": (None if r["until"] == float("inf") else max(0.0, round(r["until"] - now, 3))),
                }
                for k, r in self._rules.items()
            ]


TAG_DELAYS = TagDelays()

_LEAF_ITEM = re.compile(rb"<item>((?:(?!</?item>).)*)</item>\s*", re.S)
_LEAF_MEMBER = re.compile(rb"<member>((?:(?!</?member>).)*)</member>\s*", re.S)


def hide_tags(body: bytes, service: str, keys: list[str]) -> bytes:
    """Drop tag entries with the given keys from an EC2/Auto Scaling XML body.

    Tag entries are leaf <item>/<member> elements (no nested items), so a
    regex over leaf elements is enough and leaves the rest byte-identical."""
    if service == "ec2":
        pat, tag = _LEAF_ITEM, b"key"
    else:
        pat, tag = _LEAF_MEMBER, b"Key"
    needles = [b"<%s>%s</%s>" % (tag, xml_escape(k).encode(), tag) for k in keys]

    def repl(m):
        inner = m.group(1)
        return b"" if any(n in inner for n in needles) else m.group(0)

    return pat.sub(repl, body)


# ---------------------------------------------------------------------------
# Fault rules (shared by the proxy and IMDS)
# ---------------------------------------------------------------------------

AWS_KINDS = {"delay", "status", "throttle", "reset", "truncate", "date_skew"}
IMDS_KINDS = {"delay", "status", "reset"}  # plus immediate actions refuse / expire_tokens


class FaultRule:
    _ids = itertools.count(1)

    def __init__(self, target: str, spec: dict, rule_id: int | None = None):
        self.id = next(self._ids) if rule_id is None else rule_id
        self.target = target
        self.spec = dict(spec)
        self.kind = spec.get("kind")
        kinds = AWS_KINDS if target == "aws" else IMDS_KINDS
        if self.kind not in kinds:
            raise ValueError(f"unknown fault kind {self.kind!r} for {target}; one of {sorted(kinds)}")
        self.count = int(spec.get("count", -1))  # -1 = forever
        self.fired = 0
        self.created = time.monotonic()
        fs = spec.get("for_seconds")
        self.until = None if fs is None else self.created + float(fs)

        def as_list(v):
            if v is None:
                return None
            return [v] if isinstance(v, str) else list(v)

        self.services = as_list(spec.get("service"))
        self.actions = as_list(spec.get("action"))
        self.methods = [m.upper() for m in as_list(spec.get("method")) or []] or None
        self.path_re = re.compile(spec["path"]) if spec.get("path") else None
        self.body_re = re.compile(spec["body"]) if spec.get("body") else None

    def active(self) -> bool:
        if self.count == 0:
            return False
        return self.until is None or time.monotonic() < self.until

    def matches(self, service, action, method, path, body=None) -> bool:
        if not self.active():
            return False
        if self.services is not None and service not in self.services:
            return False
        if self.actions is not None and action not in self.actions:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        if self.path_re is not None and not self.path_re.search(path):
            return False
        if self.body_re is not None and (body is None or not self.body_re.search(body)):
            return False
        return True

    def fire(self) -> None:
        self.fired += 1
        if self.count > 0:
            self.count -= 1

    def to_json(self) -> dict:
        d = dict(self.spec)
        d.update(id=self.id, target=self.target, fired=self.fired, remaining=self.count, active=self.active())
        return d


class FaultTable:
    def __init__(self):
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = []

    def add(self, target: str, spec: dict) -> FaultRule:
        rule = FaultRule(target, spec)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self, target: str | None = None) -> None:
        with self._lock:
            self.rules = [r for r in self.rules if target is not None and r.target != target]

    def take(self, target, service, action, method, path, body=None) -> list[FaultRule]:
        """Matching rules, each counted as fired.

        All matching delay/date_skew rules apply; of the "answering" kinds
        (status/throttle/reset/truncate) only the first matching one."""
        out, answered = [], False
        with self._lock:
            for r in self.rules:
                if r.target != target or not r.matches(service, action, method, path, body):
                    continue
                if r.kind in ("delay", "date_skew"):
                    out.append(r)
                    r.fire()
                elif not answered:
                    answered = True
                    out.append(r)
                    r.fire()
        return out

    def to_json(self) -> dict:
        with self._lock:
            return {
                "aws": [r.to_json() for r in self.rules if r.target == "aws"],
                "imds": [r.to_json() for r in self.rules if r.target == "imds"],
            }


FAULTS = FaultTable()

# ---------------------------------------------------------------------------
# Token buckets: AWS's account-wide request rate limits (opt-in, POST /buckets)
# ---------------------------------------------------------------------------

# Sizes AWS publishes, or (Auto Scaling) a documented guess.  Keys are
# "service:action" patterns (fnmatch); each matching action gets a bucket of
# its own unless the rule says "shared": true.
#  * EC2: "each API is evaluated individually"; non-mutating actions
#    (Describe*) have a bucket of 100 tokens refilled at 20 per second
#    (EC2 developer guide, "Request throttling for the Amazon EC2 API").
#    Throttled: RequestLimitExceeded, HTTP 503.
#  * Auto Scaling: "all Amazon EC2 Auto Scaling API calls have a single,
#    shared API limit" per account and region (AWS knowledge center,
#    autoscaling-api-calls-throttled), but its size is not published.
#    Assumed here: 40 tokens, 5 per second, one bucket for every action.
#    Throttled: Throttling, HTTP 400.
#  * S3: 5,500 GET/HEAD per second per prefix; modelled as one shared bucket
#    for GetObject and HeadObject (the fleet reads one prefix).  Throttled:
#    SlowDown, HTTP 503.
BUCKET_PRESETS = {
    "aws": {
        "ec2:Describe*": {"burst": 100, "rate": 20},
        "autoscaling:*": {"burst": 40, "rate": 5, "shared": "autoscaling"},
        "s3:GetObject": {"burst": 5500, "rate": 5500, "shared": "s3-get"},
        "s3:HeadObject": {"burst": 5500, "rate": 5500, "shared": "s3-get"},
    },
}


class TokenBucket:
    """Holds up to `burst` tokens, refilled continuously at `rate` per second.
    A request takes one token; with none left it is throttled (and takes none)."""

    def __init__(self, name: str, burst: float, rate: float):
        self.name = name
        self.burst = float(burst)
        self.rate = float(rate)
        self.tokens = self.burst
        self.stamp = time.monotonic()
        self.allowed = 0
        self.throttled = 0
        self.first_throttled: float | None = None  # wall times
        self.last_throttled: float | None = None

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.allowed += 1
            return True
        self.throttled += 1
        self.last_throttled = time.time()
        if self.first_throttled is None:
            self.first_throttled = self.last_throttled
        return False

    def to_json(self, now: float) -> dict:
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        return {"burst": self.burst, "rate": self.rate, "tokens": round(tokens, 3),
                "allowed": self.allowed, "throttled": self.throttled,
                "first_throttled": self.first_throttled, "last_throttled": self.last_throttled}


class Buckets:
    """Account-wide token buckets in the proxy.  Off until configured."""

    def __init__(self):
        self._lock = threading.Lock()
        self.rules: list[tuple[str, dict]] = []  # (pattern, {"burst", "rate", "shared"})
        self.buckets: dict[str, TokenBucket] = {}  # bucket name -> bucket
        self.counters: dict[str, dict] = {}  # "service:action" -> {"allowed", "throttled", "bucket"}
        self.spec: dict = {}
        self.enabled_at: float | None = None

    @staticmethod
    def expand(spec: dict) -> dict:
        """Rules in matching order: the given ones first (in their order), then
        the preset's that were not overridden or dropped (`null`)."""
        spec = dict(spec or {})
        out: dict = {}
        preset = spec.pop("preset", None)
        if preset is not None and preset not in BUCKET_PRESETS:
            raise ValueError(f"unknown preset {preset!r}; one of {sorted(BUCKET_PRESETS)}")
        for key, rule in spec.items():
            if not isinstance(key, str) or ":" not in key:
                raise ValueError(f"bucket key {key!r} is not SERVICE:ACTION (patterns allowed)")
            if rule is None:  # {"autoscaling:*": null} drops a preset rule
                continue
            if not isinstance(rule, dict):
                raise ValueError(f"bucket {key!r}: want {{burst, rate}}")
            burst, rate = float(rule["burst"]), float(rule["rate"])
            if burst < 1 or rate < 0:
                raise ValueError(f"bucket {key!r}: burst must be >= 1 and rate >= 0")
            r = {"burst": burst, "rate": rate}
            if rule.get("shared"):
                r["shared"] = rule["shared"] if isinstance(rule["shared"], str) else key
            out[key] = r
        for key, rule in (BUCKET_PRESETS[preset].items() if preset is not None else ()):
            if key not in spec:
                out[key] = dict(rule)
        return out

    def configure(self, spec: dict) -> dict:
        rules = self.expand(spec)
        with self._lock:
            self.spec = rules
            self.rules = list(rules.items())
            self.buckets = {}
            self.counters = {}
            self.enabled_at = time.time() if rules else None
        return self.to_json()

    def clear(self) -> None:
        self.configure({})

    def reset_counters(self) -> None:
        with self._lock:
            self.counters = {}
            for b in self.buckets.values():
                b.allowed = b.throttled = 0
                b.first_throttled = b.last_throttled = None

    def _rule_for(self, name: str):
        rule = self.spec.get(name)  # an exact key wins over patterns
        if rule is not None:
            return name, rule
        for pattern, rule in self.rules:
            if fnmatch.fnmatchcase(name, pattern):
                return pattern, rule
        return None, None

    def take(self, service: str | None, action: str | None) -> tuple[bool, str | None]:
        """(allowed, bucket name); (True, None) when no bucket applies."""
        if not self.rules:
            return True, None
        name = f"{service or '?'}:{action or '?'}"
        now = time.monotonic()
        with self._lock:
            if not self.rules:
                return True, None
            pattern, rule = self._rule_for(name)
            ctr = self.counters.get(name)
            if ctr is None:
                ctr = self.counters[name] = {"allowed": 0, "throttled": 0, "bucket": None}
            if rule is None:
                ctr["allowed"] += 1
                return True, None
            bname = rule.get("shared") or name
            b = self.buckets.get(bname)
            if b is None:
                b = self.buckets[bname] = TokenBucket(bname, rule["burst"], rule["rate"])
            ctr["bucket"] = bname
            ok = b.take(now)
            ctr["allowed" if ok else "throttled"] += 1
            return ok, bname

    def to_json(self) -> dict:
        now = time.monotonic()
        with self._lock:
            return {
                "enabled": bool(self.rules),
                "enabled_at": self.enabled_at,
                "rules": {k: dict(v) for k, v in self.rules},
                "buckets": {k: b.to_json(now) for k, b in self.buckets.items()},
                "counters": {k: dict(v) for k, v in sorted(self.counters.items())},
            }


BUCKETS = Buckets()

# Error codes -> (HTTP status, default message)
KNOWN_CODES = {
    "RequestLimitExceeded": (503, "Request limit exceeded."),
    "Throttling": (400, "Rate exceeded"),
    "ThrottlingException": (400, "Rate exceeded"),
    "SlowDown": (503, "Please reduce your request rate."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InternalFailure": (500, "The request processing has failed because of an unknown error."),
    "ServiceUnavailable": (503, "Service is unable to handle request."),
    "Unavailable": (503, "The server is unavailable."),
    "ResourceContention": (500, "You already have a pending update to an Auto Scaling resource."),
    "RequestExpired": (400, "Request has expired."),
    "RequestTimeTooSkewed": (403, "The difference between the request time and the current time is too large."),
    "ExpiredToken": (400, "The security token included in the request is expired"),
    "TokenRefreshRequired": (400, "The provided token must be refreshed."),
    "AuthFailure": (401, "AWS was not able to validate the provided access credentials"),
    "SignatureDoesNotMatch": (403, "The request signature we calculated does not match the signature you provided."),
    "AccessDenied": (403, "Access Denied"),
    "UnauthorizedOperation": (403, "You are not authorized to perform this operation."),
}
THROTTLE_BY_SERVICE = {"ec2": "RequestLimitExceeded", "s3": "SlowDown"}  # others: Throttling
QUERY_NS = {
    "autoscaling": "http://autoscaling.amazonaws.com/doc/2011-01-01/",
    "elasticloadbalancing": "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
}
REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def s3_error_details(code: str | None, headers, skew: float) -> str:
    """The elements S3 adds after Message for some codes (as real answers
    quoted in public bug reports show; AWS's documentation lists only the
    codes): RequestTimeTooSkewed names both times and the allowed skew;
    ExpiredToken and TokenRefreshRequired echo the session token as Token-0,
    so tests can check that the agent never prints an error body."""
    if code == "RequestTimeTooSkewed":
        return (f"<RequestTime>{xml_escape(headers.get('X-Amz-Date') or '')}</RequestTime>"
                f"<ServerTime>{utc_iso(time.time() + skew)}</ServerTime>"
                "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>")
    if code in ("ExpiredToken", "TokenRefreshRequired"):
        return f"<Token-0>{xml_escape(headers.get('X-Amz-Security-Token') or '')}</Token-0>"
    return ""


def error_response(service: str | None, spec: dict, rid: str,
                   s3_details: str = "") -> tuple[int, str, bytes]:
    """(status, content-type, body) for a status/throttle fault; s3_details
    go into an S3-shaped body after Message."""
    code = spec.get("code")
    if spec.get("kind") == "throttle" and not code:
        code = THROTTLE_BY_SERVICE.get(service or "", "Throttling")
    status = spec.get("status")
    if code is None:
        # Plain HTTP error, as from a load balancer in front of the service.
        status = int(status or 503)
        reason = REASONS.get(status, http.client.responses.get(status, "Error"))
        body = f"<html><body><h1>{status} {reason}</h1></body></html>\n".encode()
        return status, "text/html", body
    default_status, default_msg = KNOWN_CODES.get(code, (500, code))
    status = int(status or default_status)
    msg = xml_escape(spec.get("message") or default_msg)
    shape = spec.get("shape") or {"ec2": "ec2", "s3": "s3"}.get(service or "", "query")
    if shape == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{xml_escape(code)}</Code><Message>{msg}</Message></Error></Errors>"
            f"<RequestID>{rid}</RequestID></Response>"
        )
        return status, "text/xml;charset=UTF-8", body.encode()
    if shape == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{xml_escape(code)}</Code><Message>{msg}</Message>{s3_details}"
            f"<RequestId>{rid}</RequestId><HostId>{base64.b64encode(os.urandom(48)).decode()}</HostId></Error>"
        )
        return status, "application/xml", body.encode()
    ns = QUERY_NS.get(service or "")
    xmlns = f' xmlns="{ns}"' if ns else ""
    typ = "Sender" if status < 500 else "Receiver"
    body = (
        f"<ErrorResponse{xmlns}><Error><Type>{typ}</Type><Code>{xml_escape(code)}</Code>"
        f"<Message>{msg}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
    )
    return status, "text/xml", body.encode()


# ---------------------------------------------------------------------------
# Common HTTP server plumbing
# ---------------------------------------------------------------------------


class LoopbackServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a fleet of agents connects in the same second
    allow_reuse_address = True

    def __init__(self, port, handler):
        super().__init__(("127.0.0.1", port), handler)
        self.conns: set = set()
        self.conns_lock = threading.Lock()

    def handle_error(self, request, client_address):
        log.debug("connection error from %s", client_address, exc_info=True)


class TrackingHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 600  # idle keep-alive connections

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        with self.server.conns_lock:
            self.server.conns.add(self.connection)

    def finish(self):
        with self.server.conns_lock:
            self.server.conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def end_headers(self):
        # Closing after this answer (client asked, HTTP/1.0, close-delimited
        # body, proxy error): say so, as HTTP/1.1 wants.
        if self.close_connection:
            self.send_header("Connection", "close")
        super().end_headers()

    def log_message(self, fmt, *args):
        log.debug("%s %s", self.__class__.__name__, fmt % args)

    def abort(self, rst: bool = True) -> None:
        """Drop the connection without a (further) answer: RST or FIN."""
        self.close_connection = True
        try:
            if rst:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    def read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send_simple(self, status, body: bytes, ctype="text/plain", extra=None, date_skew=0.0, head=False):
        self.send_response_only(status)
        self.send_header("Date", email.utils.formatdate(time.time() + date_skew, usegmt=True))
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)


def serve_in_thread(server, name) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
    t.start()
    return t


# ---------------------------------------------------------------------------
# Fault proxy (port "aws")
# ---------------------------------------------------------------------------

_CRED_RE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "transfer-encoding"}


def s3_action(method: str, path: str) -> str:
    u = urllib.parse.urlsplit(path)
    q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
    parts = u.path.lstrip("/").split("/", 1)
    bucket = parts[0]
    key = parts[1] if len(parts) > 1 and parts[1] else ""
    if not bucket:
        return "ListBuckets"
    if key:
        if method == "GET":
            return "GetObjectTagging" if "tagging" in q else "GetObject"
        if method == "HEAD":
            return "HeadObject"
        if method == "PUT":
            return "UploadPart" if "uploadId" in q else "PutObject"
        if method == "DELETE":
            return "AbortMultipartUpload" if "uploadId" in q else "DeleteObject"
        if method == "POST":
            return "CreateMultipartUpload" if "uploads" in q else "CompleteMultipartUpload"
    else:
        if method == "GET":
            return "ListObjectsV2" if q.get("list-type") == ["2"] else "ListObjects"
        if method == "HEAD":
            return "HeadBucket"
        if method == "PUT":
            return "CreateBucket"
        if method == "DELETE":
            return "DeleteBucket"
        if method == "POST" and "delete" in q:
            return "DeleteObjects"
    return method


# Answers that carry tags, and whose copy of the tag they show.
TAG_ACTIONS = {
    ("ec2", "DescribeTags"): "instance",
    ("ec2", "DescribeInstances"): "instance",
    ("autoscaling", "DescribeTags"): "group",
    ("autoscaling", "DescribeAutoScalingGroups"): "group",
}


class ProxyHandler(TrackingHandler):
    """Forwards to moto byte-for-byte (headers verbatim, bodies streamed)
    unless a fault rule says otherwise."""

    server_version = "fakeaws-proxy"
    CHUNK = 256 * 1024

    def do_ANY(self):
        t0 = time.monotonic()
        method, path = self.command, self.path
        auth = self.headers.get("Authorization", "")
        m = _CRED_RE.search(auth) or _CRED_RE.search(urllib.parse.unquote(path))
        service = m.group(4) if m else None

        # Small Query-API form bodies are read up front (to find Action);
        # everything else is streamed to moto later.
        ctype = (self.headers.get("Content-Type") or "").lower()
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        body = None
        action = None
        if ctype.startswith("application/x-www-form-urlencoded") and not chunked:
            body = self.read_body()
            action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action", [None])[0]
        if action is None:
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            action = q.get("Action", [None])[0]
        if action is None and service == "s3":
            action = s3_action(method, path)

        form = urllib.parse.unquote_plus(body.decode("utf-8", "replace")) if body else None
        rules = FAULTS.take("aws", service, action, method, path, form)
        # amz_date: the time the request was signed with (clock-skew tests).
        entry = dict(target="aws", service=service, action=action, method=method, path=path,
                     amz_date=self.headers.get("X-Amz-Date"),
                     start=time.time(), seq=REQUESTS.arrived(), upstream_bytes=0, bytes=0)
        INFLIGHT[id(entry)] = entry
        def total(kind, stage=None):
            return sum(float(r.spec.get("seconds", 0)) for r in rules
                       if r.kind == kind and (stage is None or r.spec.get("stage", "request") == stage))

        skew = total("date_skew")
        delay, body_delay = total("delay", "request"), total("delay", "body")
        answer = next((r for r in rules if r.kind not in ("delay", "date_skew")), None)
        entry["faults"] = [r.kind for r in rules]
        if answer is None and BUCKETS.rules:
            # Account-wide token buckets (POST /buckets): an empty bucket
            # answers the service's throttling error; moto never sees it.
            ok, bname = BUCKETS.take(service, action)
            if bname is not None:
                entry["bucket"] = bname
            if not ok:
                entry["throttled"] = True
                entry["faults"].append("bucket")
                answer = FaultRule("aws", {"kind": "throttle", "bucket": bname}, rule_id=0)
        if delay:
            time.sleep(delay)

        # Does moto get to see the request?  Not for status/throttle/reset
        # faults, unless the rule says forward=true (the action happens, the
        # answer is lost).  truncate and reset-after-N-bytes need moto's answer.
        if answer is None or answer.kind == "truncate" or answer.spec.get("forward"):
            forward = True
        else:
            forward = answer.kind == "reset" and answer.spec.get("after_bytes") is not None

        try:
            if not forward:
                self._drain_request(body, chunked)
                if answer.kind == "reset":
                    entry["status"] = "reset"
                    self.abort(rst=True)
                    return
                self._send_error(service, answer, skew, entry)
                return

            resp, conn = self._forward(method, path, body, chunked)
            try:
                if answer is not None and answer.kind in ("status", "throttle"):
                    # forward=true: moto acted on the request, the client
                    # gets the error anyway (lost response).
                    resp.read()
                    self._send_error(service, answer, skew, entry)
                    return
                if answer is not None and answer.kind == "reset" and answer.spec.get("after_bytes") is None:
                    resp.read()
                    entry["status"] = "reset"
                    self.abort(rst=True)
                    return
                entry["status"] = resp.status
                self._relay(resp, method, service, action, skew, body_delay, answer, entry)
            finally:
                conn.close()
        except (BrokenPipeError, ConnectionResetError) as e:
            entry.setdefault("status", "client-gone")
            entry["error"] = str(e)
            self.close_connection = True
        except Exception as e:
            # moto unreachable or a bug here: answer 502 (unless the
            # response has started, then all we can do is drop it).
            log.exception("proxy %s %s", method, path)
            entry["error"] = repr(e)
            if "status" in entry:
                self.abort(rst=True)
            else:
                entry["status"] = 502
                self.close_connection = True
                self.send_simple(502, b"fakeaws proxy error\n")
        finally:
            INFLIGHT.pop(id(entry), None)
            entry["duration"] = round(time.monotonic() - t0, 4)
            REQUESTS.add(**entry)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_ANY

    def _send_error(self, service, rule, skew, entry):
        rid = str(uuid.uuid4())
        code = rule.spec.get("code")
        details = s3_error_details(code, self.headers, skew) if service == "s3" else ""
        status, ctype, body = error_response(service, rule.spec, rid, details)
        entry["status"] = status
        hdr = "x-amz-request-id" if service == "s3" else "x-amzn-RequestId"
        self.send_simple(status, body, ctype, {hdr: rid}, skew, head=(self.command == "HEAD"))

    def _drain_request(self, body, chunked):
        if body is not None:
            return
        if chunked:
            self._relay_chunked(None)
            return
        n = int(self.headers.get("Content-Length") or 0)
        while n > 0:
            got = self.rfile.read(min(n, self.CHUNK))
            if not got:
                break
            n -= len(got)

    def _relay_chunked(self, conn):
        """Copy a chunked request body verbatim (framing included)."""
        while True:
            line = self.rfile.readline(65537)
            if conn:
                conn.send(line)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers up to the empty line
                    t = self.rfile.readline(65537)
                    if conn:
                        conn.send(t)
                    if t in (b"\r\n", b"\n", b""):
                        return
            left = size + 2  # data + CRLF
            while left > 0:
                got = self.rfile.read(min(left, self.CHUNK))
                if not got:
                    return
                if conn:
                    conn.send(got)
                left -= len(got)

    def _forward(self, method, path, body, chunked):
        conn = http.client.HTTPConnection("127.0.0.1", MOTO_PORT, timeout=300)
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        # Request headers verbatim, in order (SigV4 signs Host and others).
        # http.server already answered "100 Continue" if the client sent
        # Expect; moto's own interim 100 is skipped by http.client.
        for k, v in self.headers.items():
            conn.putheader(k, v)
        if body is not None:
            conn.endheaders(body)
        elif chunked:
            conn.endheaders()
            self._relay_chunked(conn)
        else:
            conn.endheaders()
            n = int(self.headers.get("Content-Length") or 0)
            while n > 0:
                got = self.rfile.read(min(n, self.CHUNK))
                if not got:
                    break
                conn.send(got)
                n -= len(got)
        return conn.getresponse(), conn

    def _relay(self, resp, method, service, action, skew, body_delay, answer, entry):
        headers = resp.getheaders()
        lower = {k.lower(): v for k, v in headers}
        resp_chunked = "chunked" in lower.get("transfer-encoding", "").lower()
        has_body = method != "HEAD" and resp.status not in (204, 304) and resp.status >= 200
        length = int(lower["content-length"]) if "content-length" in lower else None

        # Tag delay: rewrite the (small) XML answers that carry tags.
        hidden = None
        if resp.status == 200 and (service, action) in TAG_ACTIONS:
            hidden = TAG_DELAYS.hidden(TAG_ACTIONS[(service, action)])
        prebuffered = None
        if hidden:
            raw = resp.read()
            prebuffered = hide_tags(raw, service, hidden)
            if prebuffered != raw:
                entry["tags_hidden"] = hidden
            length, resp_chunked = len(prebuffered), False
            headers = [(k, str(length) if k.lower() == "content-length" else v) for k, v in headers
                       if k.lower() != "transfer-encoding"]
            if "content-length" not in lower:
                headers.append(("Content-Length", str(length)))

        self.send_response_only(resp.status, resp.reason)
        for k, v in headers:
            kl = k.lower()
            if kl in HOP_BY_HOP and not (kl == "transfer-encoding" and resp_chunked):
                continue
            if kl == "date" and skew:
                parsed = email.utils.parsedate_to_datetime(v)
                v = email.utils.format_datetime(parsed + dt.timedelta(seconds=skew), usegmt=True)
            self.send_header(k, v)
        if skew and "date" not in lower:
            self.send_header("Date", email.utils.formatdate(time.time() + skew, usegmt=True))
        if has_body and length is None and not resp_chunked:
            self.close_connection = True  # close-delimited body
        self.end_headers()
        if not has_body:
            return
        if body_delay:
            time.sleep(body_delay)

        # How much of the body to send before misbehaving.
        limit = None
        if answer is not None and answer.kind == "reset":
            limit = int(answer.spec.get("after_bytes") or 0)
        elif answer is not None and answer.kind == "truncate":
            b = answer.spec.get("bytes")
            limit = int(b) if b is not None else (length // 2 if length else 0)

        def write(data):
            if resp_chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(data)
            entry["bytes"] += len(data)

        def upstream():
            # Stream: never more than CHUNK bytes of the body held here.
            if prebuffered is not None:
                entry["upstream_bytes"] = len(prebuffered)
                yield prebuffered
                return
            while True:
                data = resp.read(self.CHUNK)
                if not data:
                    return
                entry["upstream_bytes"] += len(data)
                yield data

        for data in upstream():
            sent = entry["bytes"]
            if limit is not None and sent + len(data) >= limit:
                if limit > sent:
                    write(data[: limit - sent])
                entry["status"] = f"{answer.kind}@{limit}"
                self.abort(rst=(answer.kind == "reset"))
                return
            write(data)
        if limit is not None:  # body shorter than the limit: still misbehave
            entry["status"] = f"{answer.kind}@{entry['bytes']}"
            self.abort(rst=(answer.kind == "reset"))
            return
        if resp_chunked:
            self.wfile.write(b"0\r\n\r\n")


# ---------------------------------------------------------------------------
# IMDSv2 fake (port "imds")
# ---------------------------------------------------------------------------


class ImdsIdentity:
    """What one instance sees in IMDS: its id, region, zone, lifecycle state,
    tags switch and its own session tokens.  The default identity (paths
    starting with /latest) is IMDS itself; more can be added for many
    instances in one fake: `/INSTANCE_ID/latest/...` (POST /imds/instances)."""

    FIELDS = ("instance_id", "region", "az", "lifecycle_state", "tags_enabled", "disabled", "role_name")

    def __init__(self, instance_id: str | None = None, region: str = REGION):
        self.tokens: dict[str, float] = {}  # token -> monotonic expiry
        self.instance_id = instance_id
        self.region = region
        self.az: str | None = None
        self.lifecycle_state: str | None = None  # None = derive from moto
        self.tags_enabled = False
        self.disabled = False
        self.role_name = ROLE_NAME
        # The moto instance of a per-instance identity, kept from registration:
        # its static data (AMI, type, IP, zone) is then served without waiting
        # for MOTO_LOCK, which a busy proxy holds most of the time, as a real
        # IMDS does not wait for the EC2 API.  The default identity looks it
        # up live (its instance_id can change at any time).
        self.inst = None

    def config_unlocked(self) -> dict:
        now = time.monotonic()
        out = {k: getattr(self, k) for k in self.FIELDS}
        out["live_tokens"] = sum(1 for e in self.tokens.values() if e > now)
        return out


class ImdsState(ImdsIdentity):
    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.credentials: dict | None = None  # the role's; shared by every identity
        # Per-instance identities under a path prefix: instance id -> ImdsIdentity
        self.identities: dict[str, ImdsIdentity] = {}

    def config(self) -> dict:
        with self.lock:
            return self.config_unlocked()

    def all_identities(self) -> list:
        return [self, *self.identities.values()]


IMDS = ImdsState()
# First path segment naming a per-instance identity: /i-0123.../latest/...
_IMDS_PREFIX = re.compile(r"^/(i-[0-9A-Za-z]+)(/.*)?$")


def moto_instance(instance_id: str, region: str):
    with MOTO_LOCK:
        backend = ec2_backends[ACCOUNT_ID][region]
        return backend.get_instance_by_id(instance_id)


def target_lifecycle_state(instance_id: str, region: str) -> str | None:
    """Derive IMDS target-lifecycle-state from moto (the *target* state:
    InService while still Pending:Wait)."""
    from moto.autoscaling.models import autoscaling_backends

    with MOTO_LOCK:
        backend = autoscaling_backends[ACCOUNT_ID][region]
        for g in backend.autoscaling_groups.values():
            for st in g.instance_states:
                if st.instance.id == instance_id:
                    s = st.lifecycle_state
                    if s.startswith("Terminating") or s == "Terminated":
                        return "Terminated"
                    if s.startswith("Standby") or s.startswith("EnteringStandby"):
                        return "Standby"
                    if s.startswith("Detach"):
                        return "Detached"
                    if s.startswith("Warmed"):
                        return s if s.count(":") == 1 else ":".join(s.split(":")[:2])
                    return "InService"
        inst = ec2_backends[ACCOUNT_ID][region].get_instance_by_id(instance_id)
        if inst is None:
            return None
        if inst.state == "terminated":
            return "Terminated"
        if getattr(inst, "autoscaling_group", None) is not None:
            return "Detached"
        return None


def instance_tags(instance_id: str, region: str) -> dict:
    with MOTO_LOCK:
        tags = dict(ec2_backends[ACCOUNT_ID][region].tags.get(instance_id, {}))
    for k in TAG_DELAYS.hidden("instance"):
        tags.pop(k, None)
    return tags


class ImdsServer:
    """Owns the listening socket so that `refuse` can close and reopen it."""

    def __init__(self):
        self.port = 0
        self.server: LoopbackServer | None = None
        self.lock = threading.Lock()
        self.refusing_until = 0.0

    def start(self):
        with self.lock:
            self.server = LoopbackServer(self.port, ImdsHandler)
            self.port = self.server.server_address[1]
            serve_in_thread(self.server, "imds")

    def refuse(self, seconds: float):
        """Close the listening socket (and live connections) for `seconds`."""
        with self.lock:
            srv, self.server = self.server, None
            self.refusing_until = time.monotonic() + seconds
        if srv is not None:
            srv.shutdown()
            srv.server_close()
            with srv.conns_lock:
                for c in list(srv.conns):
                    try:
                        c.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
        timer = threading.Timer(seconds, self._reopen)
        timer.daemon = True
        timer.start()

    def _reopen(self):
        with self.lock:
            if self.server is not None or time.monotonic() < self.refusing_until - 0.01:
                return  # a later refuse extended the window
        for _ in range(100):
            try:
                self.start()
                return
            except OSError:
                time.sleep(0.05)
        log.error("IMDS could not re-listen on port %s", self.port)

    def stop(self):
        with self.lock:
            srv, self.server = self.server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()


IMDS_SERVER = ImdsServer()


class ImdsHandler(TrackingHandler):
    server_version = "EC2ws"
    sys_version = ""

    def do_ANY(self):
        t0 = time.monotonic()
        entry = dict(target="imds", method=self.command, path=self.path,
                     start=time.time(), seq=REQUESTS.arrived())
        INFLIGHT[id(entry)] = entry
        try:
            self._handle(entry)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:
            log.exception("IMDS %s %s", self.command, self.path)
            entry["error"] = repr(e)
            self.reply(entry, 500, "Internal Server Error")
        finally:
            INFLIGHT.pop(id(entry), None)
            entry["duration"] = round(time.monotonic() - t0, 4)
            REQUESTS.add(**entry)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_ANY

    def reply(self, entry, status, body: str | bytes = b"", ctype="text/plain", extra=None):
        if isinstance(body, str):
            body = body.encode()
        entry["status"] = status
        self.send_simple(status, body, ctype, extra, head=(self.command == "HEAD"))

    def _handle(self, entry):
        self.read_body()
        path = urllib.parse.urlsplit(self.path).path
        rules = FAULTS.take("imds", None, None, self.command, self.path)
        entry["faults"] = [r.kind for r in rules]
        delay = sum(float(r.spec.get("seconds", 0)) for r in rules if r.kind == "delay")
        if delay:
            time.sleep(delay)
        answer = next((r for r in rules if r.kind != "delay"), None)
        if answer is not None and answer.kind == "reset":
            entry["status"] = "reset"
            self.abort(rst=True)
            return
        if answer is not None and answer.kind == "status":
            st = int(answer.spec.get("status", 500))
            return self.reply(entry, st, http.client.responses.get(st, "Error"))

        # /INSTANCE_ID/latest/...: that instance's identity (opt-in, see
        # POST /imds/instances); /latest/...: the default identity.
        ident = IMDS
        m = _IMDS_PREFIX.match(path)
        if m:
            with IMDS.lock:
                ident = IMDS.identities.get(m.group(1))
            if ident is None:
                return self.reply(entry, 404, "Not Found")
            entry["identity"] = m.group(1)
            path = m.group(2) or "/"

        if ident.disabled:
            return self.reply(entry, 403, "Forbidden")
        if self.headers.get("X-Forwarded-For") is not None:
            return self.reply(entry, 403, "Forbidden")

        if self.command == "PUT":
            if path != "/latest/api/token":
                return self.reply(entry, 403, "Forbidden")
            raw = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            try:
                ttl = int(raw)
            except (TypeError, ValueError):
                ttl = 0
            if not 1 <= ttl <= 21600:
                return self.reply(entry, 400, "Bad Request")
            token = base64.urlsafe_b64encode(os.urandom(42)).decode().rstrip("=")
            with IMDS.lock:
                now = time.monotonic()
                ident.tokens = {t: e for t, e in ident.tokens.items() if e > now}
                ident.tokens[token] = now + ttl
            return self.reply(entry, 200, token, extra={"X-aws-ec2-metadata-token-ttl-seconds": str(ttl)})

        if self.command not in ("GET", "HEAD"):
            return self.reply(entry, 405, "Method Not Allowed", extra={"Allow": "OPTIONS, PUT, GET, HEAD"})

        token = self.headers.get("X-aws-ec2-metadata-token")
        with IMDS.lock:
            exp = ident.tokens.get(token or "")
            valid = exp is not None and exp > time.monotonic()
        if not valid:
            entry["token"] = "missing" if not token else "invalid"
            return self.reply(entry, 401, "Unauthorized")

        status, body, ctype = self.lookup(path, ident)
        return self.reply(entry, status, body, ctype)

    def lookup(self, path: str, ident: ImdsIdentity | None = None):
        """(status, body, content-type) for an IMDS GET path of `ident`
        (default: the default identity)."""
        ident = IMDS if ident is None else ident
        with IMDS.lock:
            iid, region, az, ls = ident.instance_id, ident.region, ident.az, ident.lifecycle_state
            tags_enabled, role, creds = ident.tags_enabled, ident.role_name, IMDS.credentials
        if not path.startswith("/latest/"):
            return 404, "Not Found", "text/plain"
        p = path[len("/latest"):]
        inst = ident.inst
        if inst is None or getattr(inst, "id", None) != iid:
            inst = moto_instance(iid, region) if iid else None
        if inst is None:
            return 404, "Not Found", "text/plain"
        az = az or inst.placement.zone
        if p in ("/meta-data", "/meta-data/"):
            items = ["ami-id", "autoscaling/", "iam/", "instance-id", "instance-type", "local-ipv4", "placement/"]
            if tags_enabled:
                items.append("tags/")
            return 200, "\n".join(items), "text/plain"
        simple = {
            "/meta-data/instance-id": iid,
            "/meta-data/ami-id": inst.image_id,
            "/meta-data/instance-type": inst.instance_type,
            "/meta-data/local-ipv4": inst.private_ip,
            "/meta-data/placement/region": region,
            "/meta-data/placement/availability-zone": az,
            "/meta-data/placement/": "availability-zone\nregion",
            "/meta-data/iam/": "info\nsecurity-credentials/",
            "/meta-data/iam/security-credentials/": role,
            "/meta-data/iam/security-credentials": role,
        }
        if p in simple:
            return 200, simple[p], "text/plain"
        if p == "/dynamic/instance-identity/document":
            doc = {
                "accountId": ACCOUNT_ID,
                "architecture": "x86_64",
                "availabilityZone": az,
                "billingProducts": None,
                "devpayProductCodes": None,
                "marketplaceProductCodes": None,
                "imageId": inst.image_id,
                "instanceId": iid,
                "instanceType": inst.instance_type,
                "kernelId": None,
                "pendingTime": inst.launch_time.strftime("%Y-%m-%dT%H:%M:%SZ")
                if hasattr(inst.launch_time, "strftime") else str(inst.launch_time),
                "privateIp": inst.private_ip,
                "ramdiskId": None,
                "region": region,
                "version": "2017-09-30",
            }
            return 200, json.dumps(doc, indent=2), "text/plain"
        if p == "/meta-data/iam/info":
            info = {
                "Code": "Success",
                "LastUpdated": (creds or {}).get("LastUpdated", utc_iso()),
                "InstanceProfileArn": f"arn:aws:iam::{ACCOUNT_ID}:instance-profile/{role}",
                "InstanceProfileId": "AIPA" + "X" * 17,
            }
            return 200, json.dumps(info, indent=2), "text/plain"
        if p == f"/meta-data/iam/security-credentials/{role}":
            if creds is None:
                return 404, "Not Found", "text/plain"
            return 200, json.dumps(creds, indent=2), "text/plain"
        if p.startswith("/meta-data/autoscaling/"):
            if p.rstrip("/") == "/meta-data/autoscaling":
                return 200, "target-lifecycle-state", "text/plain"
            if p == "/meta-data/autoscaling/target-lifecycle-state":
                state = ls or target_lifecycle_state(iid, region)
                if state is None:
                    return 404, "Not Found", "text/plain"
                return 200, state, "text/plain"
        if p.startswith("/meta-data/tags/instance") or p.rstrip("/") == "/meta-data/tags":
            if not tags_enabled:
                return 404, "Not Found", "text/plain"
            if p.rstrip("/") == "/meta-data/tags":
                return 200, "instance", "text/plain"
            tags = instance_tags(iid, region)
            if p.rstrip("/") == "/meta-data/tags/instance":
                return 200, "\n".join(sorted(tags)), "text/plain"
            key = urllib.parse.unquote(p[len("/meta-data/tags/instance/"):])
            if key in tags:
                return 200, tags[key], "text/plain"
        return 404, "Not Found", "text/plain"


# ---------------------------------------------------------------------------
# Identity setup: IAM user/role, STS credentials, auth on
# ---------------------------------------------------------------------------

AGENT_ACTIONS = [
    "ec2:DescribeTags",
    "ec2:DescribeInstances",
    "autoscaling:Describe*",
    "autoscaling:CompleteLifecycleAction",
    "autoscaling:RecordLifecycleActionHeartbeat",
    "autoscaling:SetInstanceHealth",
    "autoscaling:EnterStandby",
    "autoscaling:ExitStandby",
    "autoscaling:SetDesiredCapacity",
    "autoscaling:CreateOrUpdateTags",
    "autoscaling:UpdateAutoScalingGroup",
    "elasticloadbalancing:Describe*",
    "s3:GetObject",
    "s3:ListBucket",
    # IAM's cloudwatch:PutMetricData; moto names CloudWatch's actions by its endpoint.
    "monitoring:PutMetricData",
]


class Identity:
    def __init__(self):
        self.admin: dict | None = None
        self.role_arn: str | None = None
        self.lock = threading.Lock()

    def client(self, service, key_id=None, secret=None, token=None):
        return boto3.client(
            service,
            endpoint_url=f"http://127.0.0.1:{MOTO_PORT}",
            region_name=REGION,
            aws_access_key_id=key_id or (self.admin or {}).get("AccessKeyId") or "AKIAIOSFODNN7EXAMPLE",
            aws_secret_access_key=secret or (self.admin or {}).get("SecretAccessKey") or "bootstrap",
            aws_session_token=token,
            config=botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
        )

    def bootstrap(self):
        iam = self.client("iam")
        iam.create_user(UserName=ADMIN_USER)
        iam.put_user_policy(
            UserName=ADMIN_USER,
            PolicyName="admin-all",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )
        key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
        self.admin = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
        admin_arn = f"arn:aws:iam::{ACCOUNT_ID}:user/{ADMIN_USER}"
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [admin_arn], "Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        self.role_arn = role["Arn"]
        iam.put_role_policy(
            RoleName=ROLE_NAME,
            PolicyName="asg-agent",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": AGENT_ACTIONS, "Resource": "*"}]}
            ),
        )
        iam.create_instance_profile(InstanceProfileName=ROLE_NAME)
        iam.add_role_to_instance_profile(InstanceProfileName=ROLE_NAME, RoleName=ROLE_NAME)

    def rotate(self, expires_in: int = 3600) -> dict:
        """AssumeRole for the instance role; IMDS serves the result.

        Expiration is what we advertise (now + expires_in); moto itself does
        not expire credentials, and AssumeRole gets a duration in 900..43200."""
        with self.lock:
            sts = self.client("sts")
            c = sts.assume_role(
                RoleArn=self.role_arn,
                RoleSessionName=f"i-{uuid.uuid4().hex[:17]}",
                DurationSeconds=max(900, min(43200, int(expires_in))),
            )["Credentials"]
            now = time.time()
            creds = {
                "Code": "Success",
                "LastUpdated": utc_iso(now),
                "Type": "AWS-HMAC",
                "AccessKeyId": c["AccessKeyId"],
                "SecretAccessKey": c["SecretAccessKey"],
                "Token": c["SessionToken"],
                "Expiration": utc_iso(now + int(expires_in)),
            }
            with IMDS.lock:
                IMDS.credentials = creds
            return creds


IDENTITY = Identity()


def warm_up():
    """First call per service builds moto's Flask app / backend / service
    model (EC2 ~1 s).  Done before auth is on, with raw requests: a boto3
    client would load the same big service models again on our side."""
    scope = f"AKIAIOSFODNN7EXAMPLE/{time.strftime('%Y%m%d', time.gmtime())}/{REGION}"
    for service, method, path, body in (
        ("ec2", "POST", "/", "Action=DescribeInstances&Version=2016-11-15"),
        ("autoscaling", "POST", "/", "Action=DescribeAutoScalingGroups&Version=2011-01-01"),
        ("elasticloadbalancing", "POST", "/", "Action=DescribeTargetGroups&Version=2015-12-01"),
        ("s3", "GET", "/", ""),
    ):
        headers = {
            "Authorization": f"AWS4-HMAC-SHA256 Credential={scope}/{service}/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=0",
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        }
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        c = http.client.HTTPConnection("127.0.0.1", MOTO_PORT, timeout=30)
        c.request(method, path, body=body or None, headers=headers)
        r = c.getresponse()
        r.read()
        c.close()
        if r.status != 200:
            raise RuntimeError(f"warm-up {service}: HTTP {r.status}")


def enable_auth():
    c = http.client.HTTPConnection("127.0.0.1", MOTO_PORT, timeout=10)
    c.request("POST", "/moto-api/reset-auth", body=b"0", headers={"Content-Type": "text/plain"})
    r = c.getresponse()
    r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError(f"reset-auth answered {r.status}")
    # Self-check: a wrong secret must now fail.
    bad = IDENTITY.client("sts", key_id=IDENTITY.admin["AccessKeyId"], secret="wrong-secret")
    try:
        bad.get_caller_identity()
    except Exception:
        return
    raise RuntimeError("moto auth is not effective: a wrong secret was accepted")


# ---------------------------------------------------------------------------
# Control endpoint (port "control")
# ---------------------------------------------------------------------------

STARTED = threading.Event()


class ControlHandler(TrackingHandler):
    server_version = "fakeaws-control"

    def do_ANY(self):
        raw = self.read_body()
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return self.send_json(400, {"error": "body is not JSON"})
        path = urllib.parse.urlsplit(self.path).path.rstrip("/") or "/"
        route = (self.command, path)
        try:
            status, out = self.route(route, data)
        except (ValueError, KeyError, TypeError, re.error) as e:
            status, out = 400, {"error": f"{type(e).__name__}: {e}"}
        except Exception as e:  # pragma: no cover - report instead of hanging the test
            log.exception("control %s", route)
            status, out = 500, {"error": f"{type(e).__name__}: {e}"}
        self.send_json(status, out)

    do_GET = do_POST = do_PUT = do_DELETE = do_ANY

    def send_json(self, status, obj):
        self.send_simple(status, (json.dumps(obj, indent=1, default=str) + "\n").encode(), "application/json")

    def route(self, route, data):
        m, p = route
        if route == ("GET", "/health"):
            return (200 if STARTED.is_set() and IMDS_SERVER.server is not None else 503), {
                "ok": STARTED.is_set(),
                "imds_listening": IMDS_SERVER.server is not None,
            }
        if route == ("GET", "/info"):
            return 200, PORTS_INFO
        if route == ("GET", "/imds"):
            return 200, IMDS.config()
        if route == ("POST", "/imds"):
            return self.set_imds(data)
        if route == ("POST", "/imds/rotate-credentials"):
            return 200, IDENTITY.rotate(int(data.get("expires_in", 3600)))
        if route == ("GET", "/imds/credentials"):
            with IMDS.lock:
                return 200, IMDS.credentials
        if route == ("POST", "/imds/expire-tokens"):
            return 200, self.expire_tokens()
        if route == ("POST", "/imds/fault"):
            kind = data.get("kind")
            if kind == "refuse":
                IMDS_SERVER.refuse(float(data.get("seconds", 5)))
                return 200, {"refusing_for": float(data.get("seconds", 5))}
            if kind == "expire_tokens":
                return 200, self.expire_tokens()
            return 200, FAULTS.add("imds", data).to_json()
        if route == ("POST", "/aws/fault"):
            return 200, FAULTS.add("aws", data).to_json()
        if route == ("GET", "/faults"):
            return 200, FAULTS.to_json()
        if route == ("DELETE", "/faults"):
            FAULTS.clear(data.get("target"))
            return 200, {"cleared": True}
        if route == ("POST", "/tag-delay"):
            TAG_DELAYS.set(data["key"], float(data["seconds"]), data.get("scope", "both"))
            return 200, {"tag_delays": TAG_DELAYS.list()}
        if route == ("GET", "/tag-delay"):
            return 200, {"tag_delays": TAG_DELAYS.list()}
        if route == ("DELETE", "/tag-delay"):
            TAG_DELAYS.clear()
            return 200, {"tag_delays": []}
        if route == ("POST", "/standby-drain"):
            with MOTO_LOCK:
                LIFECYCLE.standby_drain = float(data["seconds"])
            return 200, {"standby_drain": LIFECYCLE.standby_drain}
        if route == ("GET", "/lifecycle"):
            with MOTO_LOCK:
                return 200, LIFECYCLE.snapshot()
        if route == ("DELETE", "/lifecycle"):
            with MOTO_LOCK:
                LIFECYCLE.events.clear()
            return 200, {"cleared": True}
        if route == ("GET", "/requests"):
            # A request is logged once its answer is out, which can trail the
            # client by a moment: let those already under way finish (2 s at most).
            asked, deadline = time.time(), time.monotonic() + 2
            while time.monotonic() < deadline and any(
                    e.get("start", 0) <= asked for e in list(INFLIGHT.values())):
                time.sleep(0.01)
            return 200, {"requests": REQUESTS.list()}
        if route == ("GET", "/inflight"):
            return 200, {"requests": [dict(e) for e in list(INFLIGHT.values()) if e["target"] == "aws"]}
        if route == ("GET", "/imds/inflight"):
            return 200, {"requests": [dict(e) for e in list(INFLIGHT.values()) if e["target"] == "imds"]}
        if route == ("DELETE", "/requests"):
            REQUESTS.clear()
            return 200, {"cleared": True}
        if route == ("GET", "/imds/instances"):
            with IMDS.lock:
                return 200, {"instances": [self.identity_json(i) for i in IMDS.identities.values()]}
        if route == ("POST", "/imds/instances"):
            return self.add_identities(data)
        if route == ("DELETE", "/imds/instances"):
            ids = data.get("instance_ids")
            with IMDS.lock:
                gone = [i for i in (IMDS.identities if ids is None else ids) if i in IMDS.identities]
                for i in gone:
                    del IMDS.identities[i]
            return 200, {"removed": gone}
        if route == ("GET", "/buckets"):
            return 200, BUCKETS.to_json()
        if route == ("POST", "/buckets"):
            return 200, BUCKETS.configure(data)
        if route == ("DELETE", "/buckets"):
            BUCKETS.clear()
            return 200, BUCKETS.to_json()
        if route == ("DELETE", "/buckets/counters"):
            BUCKETS.reset_counters()
            return 200, BUCKETS.to_json()
        return 404, {"error": f"no route {m} {p}"}

    @staticmethod
    def identity_json(ident) -> dict:
        out = ident.config_unlocked()
        out["prefix"] = f"/{ident.instance_id}"
        out["endpoint"] = f"http://127.0.0.1:{IMDS_SERVER.port}/{ident.instance_id}"
        return out

    def add_identities(self, data):
        """Per-instance IMDS identities: /INSTANCE_ID/latest/... for each of
        `instance_ids` (or every instance of `group`), with optional region,
        az, lifecycle_state, tags_enabled, disabled, role_name for all of them.
        An identity that exists is updated; its tokens stay valid."""
        allowed = {"instance_ids", "group"} | set(ImdsIdentity.FIELDS) - {"instance_id"}
        unknown = set(data) - allowed
        if unknown:
            return 400, {"error": f"unknown fields {sorted(unknown)}"}
        region = data.get("region") or REGION
        ids = list(data.get("instance_ids") or [])
        if data.get("group"):
            from moto.autoscaling.models import autoscaling_backends

            with MOTO_LOCK:
                g = autoscaling_backends[ACCOUNT_ID][region].autoscaling_groups.get(data["group"])
                if g is None:
                    return 400, {"error": f"no group {data['group']} in {region}"}
                ids += [st.instance.id for st in g.instance_states if st.instance.id not in ids]
        if not ids:
            return 400, {"error": "give instance_ids or group"}
        insts = {}
        for iid in ids:
            insts[iid] = moto_instance(iid, region) if _IMDS_PREFIX.match(f"/{iid}") else None
            if insts[iid] is None:
                return 400, {"error": f"instance {iid} does not exist in moto ({region})"}
        out = []
        with IMDS.lock:
            for iid in ids:
                ident = IMDS.identities.get(iid)
                if ident is None:
                    ident = IMDS.identities[iid] = ImdsIdentity(iid, region)
                ident.inst = insts[iid]
                for k in ImdsIdentity.FIELDS:
                    if k in data and k != "instance_id":
                        v = data[k]
                        if k == "lifecycle_state" and v in ("", "auto"):
                            v = None
                        setattr(ident, k, v)
                out.append(self.identity_json(ident))
        return 200, {"instances": out}

    @staticmethod
    def expire_tokens():
        with IMDS.lock:
            n = 0
            for ident in IMDS.all_identities():
                n += len(ident.tokens)
                ident.tokens.clear()
        return {"expired": n}

    @staticmethod
    def set_imds(data):
        allowed = {"instance_id", "region", "az", "lifecycle_state", "tags_enabled", "disabled", "role_name"}
        unknown = set(data) - allowed
        if unknown:
            return 400, {"error": f"unknown fields {sorted(unknown)}"}
        region = data.get("region") or IMDS.region
        if data.get("instance_id"):
            if moto_instance(data["instance_id"], region) is None:
                return 400, {"error": f"instance {data['instance_id']} does not exist in moto ({region})"}
        with IMDS.lock:
            for k, v in data.items():
                if k == "lifecycle_state" and v in ("", "auto"):
                    v = None
                setattr(IMDS, k, v)
        return 200, IMDS.config()


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

MOTO_PORT = 0
PORTS_INFO: dict = {}


def main(argv=None) -> int:
    global MOTO_PORT, PORTS_INFO
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ports-file", required=True)
    ap.add_argument("--auth", choices=("on", "off"), default="on")
    ap.add_argument("--log", help="log file (default: stderr)")
    ap.add_argument("--log-level", default="INFO")
    ap.add_argument("--credential-expires-in", type=int, default=3600)
    args = ap.parse_args(argv)

    handler = logging.FileHandler(args.log) if args.log else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO), handlers=[handler])
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    t0 = time.monotonic()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    parent = os.getppid()

    install_moto_patches()
    install_s3_value_cache()
    install_cloudwatch_alarm_types()
    install_autoscaling_tag_pages()
    moto_srv = make_server("127.0.0.1", 0, LockedApp(DomainDispatcherApplication(create_backend_app)), threaded=True,
                           request_handler=NoDelayHandler)
    MOTO_PORT = moto_srv.server_port
    threading.Thread(target=moto_srv.serve_forever, kwargs={"poll_interval": 0.05}, name="moto", daemon=True).start()

    IDENTITY.bootstrap()
    IDENTITY.rotate(args.credential_expires_in)
    t1 = time.monotonic()
    warm_up()
    t2 = time.monotonic()
    if args.auth == "on":
        enable_auth()
    log.info("startup: iam/sts %.2fs, warm-up %.2fs, auth %.2fs", t1 - t0, t2 - t1, time.monotonic() - t2)

    proxy = LoopbackServer(0, ProxyHandler)
    serve_in_thread(proxy, "proxy")
    IMDS_SERVER.start()
    control = LoopbackServer(0, ControlHandler)
    serve_in_thread(control, "control")

    def sweeper():
        while not stop.wait(0.25):
            try:
                with MOTO_LOCK:
                    LIFECYCLE.sweep()
            except Exception:
                log.exception("lifecycle sweep")

    threading.Thread(target=sweeper, name="sweeper", daemon=True).start()

    PORTS_INFO = {
        "moto": MOTO_PORT,
        "aws": proxy.server_address[1],
        "imds": IMDS_SERVER.port,
        "control": control.server_address[1],
        "pid": os.getpid(),
        "auth": args.auth == "on",
        "account_id": ACCOUNT_ID,
        "region": REGION,
        "admin": dict(IDENTITY.admin),
        "role_arn": IDENTITY.role_arn,
    }
    STARTED.set()
    tmp = f"{args.ports_file}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(PORTS_INFO, f)
    os.replace(tmp, args.ports_file)
    log.info("fakeaws up in %.2fs (%.2fs after imports): %s", time.monotonic() - T_IMPORT, time.monotonic() - t0,
             {k: v for k, v in PORTS_INFO.items() if k != "admin"})

    while not stop.wait(0.5):
        if os.getppid() != parent:
            log.info("parent %s is gone, exiting", parent)
            break

    log.info("shutting down")
    for srv in (control, proxy, moto_srv):
        try:
            srv.shutdown()
            srv.server_close()
        except Exception:
            pass
    IMDS_SERVER.stop()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # daemon threads (idle keep-alive connections) die with us


if __name__ == "__main__":
    sys.exit(main())
