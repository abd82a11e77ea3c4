#!/usr/bin/env python3
"""Retry policies against one shared token bucket: a quick model next to bench/fleet.

    python3 bench/fleet.d/backoff_sim.py [--n 200[,500,...]] [--burst 40] [--rate 5]
                                         [--seeds 20] [--spread 1.5] [--boot 0]
                                         [--only REGEX]

N clients (instances) each need one call through a bucket of `burst` tokens
refilled at `rate` per second (a throttled call takes no token), all starting
within `spread` seconds, as in a scale-out. Each retries by its policy until
it gets a token. Printed per policy and per N of --n, averaged over seeds:
attempts per instance, the share of them throttled, and the time from an
instance's start to its success (p50, p99, max), next to the floor no
policy can beat, (N - burst) / rate. This is the bucket alone, without the
fake AWS or the CPU of this machine: it isolates what the retry policy costs
in calls and in tail latency, to compare with what bench/fleet measures for
the real agent. --boot B adds the boot before the call (ready B x U(0.1, 1)
s after the start), as bench/fleet's N agents on a few CPUs take 1 to 2 s:
meanwhile the bucket sits full and its refill is lost. One call per
instance is the profile with the launch hook named (CompleteLifecycleAction
alone through the Auto Scaling bucket).
"""
import argparse
import heapq
import math
import random
import re
import statistics


def run(policy, n, burst, rate, seed, spread=1.5, max_t=3600.0, boot=0.0):
    """One scale-out. A policy is called after each throttled attempt as
    policy(rng, attempt, client state, time, world) and returns the delay to
    the next attempt, or None to give up; world holds the bucket's rate, how
    many clients have no token yet and the wall clock's second at time 0.
    With boot > 0 an instance can make its call only boot x U(0.1, 1) seconds
    after its start (drawn from a generator of their own, so boot = 0 keeps
    the runs as they were)."""
    rng = random.Random(seed)
    tokens, last = float(burst), 0.0
    starts = [rng.uniform(0, spread) for _ in range(n)]
    # A policy told the wave's size (what-if rows) may hold its first attempt back.
    first = getattr(policy, "first", lambda *_: 0.0)
    credit = getattr(policy, "credit", lambda *_: 0.0)(n, burst, rate)
    brng = random.Random(f"boot {seed}")
    boots = [boot * brng.uniform(0.1, 1) if boot > 0 else 0.0 for _ in range(n)]

    def attempt_at(i, t):
        # The agent's pace_start: the boot's work counts toward the turn, up to the credit.
        b = boots[i]
        return t + max(b, b - min(b, credit) + first(rng, n, burst, rate))

    ev = [(attempt_at(i, t), i, 0) for i, t in enumerate(starts)]
    heapq.heapify(ev)
    state = [{"slow": 1.0, "prev": None, "start": starts[i]} for i in range(n)]
    world = {"rate": rate, "waiting": n, "epoch": 1.8e9 + rng.random()}
    done, attempts, failed = [None] * n, [0] * n, 0
    while ev:
        t, i, a = heapq.heappop(ev)
        if t > max_t:
            break
        tokens, last = min(burst, tokens + (t - last) * rate), t
        attempts[i] += 1
        if tokens >= 1:
            tokens -= 1
            done[i] = t
            world["waiting"] -= 1
            continue
        d = policy(rng, a, state[i], t, world)
        if d is None:
            failed += 1
            world["waiting"] -= 1
            continue
        heapq.heappush(ev, (t + d, i, a + 1))
    fin = sorted(done[i] - starts[i] for i in range(n) if done[i] is not None)
    ok = sum(1 for x in done if x is not None)
    return {"att": sum(attempts) / n, "thr": (sum(attempts) - ok) / sum(attempts),
            "p50": statistics.median(fin), "p99": fin[int(0.99 * (len(fin) - 1))], "max": fin[-1],
            "failed": failed}


def full_jitter(base, cap):
    """delay = U(0, min(cap, base * 2^attempt)): asg-agent's retry_next()."""
    return lambda rng, a, s, *_: rng.random() * min(cap, base * 2 ** a)


def slowdown_in_call(base, cap, most=32):
    """As full_jitter, with the base also doubled per throttle (a per-process
    slowdown applied to the call in progress, not only to the next call)."""
    def policy(rng, a, s, *_):
        s["slow"] = min(most, s["slow"] * 2)
        return rng.random() * min(cap, base * s["slow"] * 2 ** a)
    return policy


def agent(cap, base=0.1, throttle_base=0.5, floor=0.5):
    """asg-agent's aws_call: the first throttling answer of a call doubles the
    process's slowdown and raises the base to 0.5 s x slowdown; from then on
    equal jitter, delay = U(c/2, c) with c = min(cap, base * 2^attempt).
    throttle_base and floor (the jitter's lower bound, as a share of c) are
    here to try variants of it."""
    def policy(rng, a, s, *_):
        if s["prev"] is None:
            s["slow"] = min(32, s["slow"] * 2)
            s["prev"] = max(base * s["slow"], throttle_base * s["slow"])
        c = min(cap, s["prev"] * 2 ** a)
        return c * floor + rng.random() * c * (1 - floor)
    return policy


def decorrelated(base, cap):
    """delay = min(cap, U(base, 3 x previous delay))."""
    def policy(rng, a, s, *_):
        s["prev"] = min(cap, rng.uniform(base, (s["prev"] or base) * 3))
        return s["prev"]
    return policy


def cli_legacy(rng, a, s, *_):
    """AWS CLI v1 / botocore legacy mode: 5 attempts, U(0, 1) x 2^n, then the call fails."""
    return None if a >= 4 else rng.random() * 2 ** a


def adaptive(w0=2.0, grow=0.7, cap=8.0, floor=0.7, tail=0.1):
    """asg-agent's retry_mode = adaptive: from its first throttle at t0 on, a
    client waits w x U(floor, 1) after each throttle at t, w = min(max(cap,
    tail x (t - t0)), w0 + grow x (t - t0)): the longer the bucket has been
    empty, the more clients are likely waiting on it, so the slower each one
    asks (agent/pace.c)."""
    def policy(rng, a, s, t, world):
        if s.get("t0") is None:
            s["t0"] = t
        w = min(max(cap, tail * (t - s["t0"])), w0 + grow * (t - s["t0"]))
        return w * (floor + (1 - floor) * rng.random())
    return policy


def oracle(rng, a, s, t, world):
    """A bound: a client that knows W, the clients with no token yet, waits
    U(0, W / rate): the W spread over the time the bucket needs to serve
    them, the best a client can do without coordinating with the others."""
    return rng.random() * world["waiting"] / world["rate"]


class Announced:
    """asg-agent's retry_mode = adaptive in an announced scale-out (agent/
    pace.c): every instance is told N (the tag asg-agent:scale-out a rollout
    step writes before it raises the capacity) and holds its first attempt
    back to its turn, W = (N - burst) / rate (one call per instance here; at
    most 600 s, the agent's [agent] deadline / 2 by default: 300 s), from its
    own start: with front (session 10) the share (burst / 2) / N of the
    fleet has its turn at once and the others draw theirs U(0, W); without
    it (session 8) every turn is U(0, W). The boot's work before the call
    (--boot) counts toward the turn, up to burst / 2 x W / N seconds (the
    agent's credit). After a throttle it holds as adaptive does with a first
    window of two refills, 2 / rate (hold=None), or after hold x U(0.7, 1).
    It needs the bucket's size, which AWS does not publish (the agent's
    [aws] autoscaling_burst and autoscaling_rate), and it spreads what the
    boots may have spread already: with starts over S seconds its p99 grows
    by up to S."""

    def __init__(self, hold=None, cap=300.0, front=True):
        self.hold = hold
        self.cap = cap
        self.front = front

    def window(self, n, burst, rate):
        return min(self.cap, max(0.0, (n - burst) / rate))

    def first(self, rng, n, burst, rate):
        # One draw, as pace_start: u below the front share is a turn at the start.
        f = min(0.5, burst / 2 / n) if self.front and n > 0 and burst >= 1 else 0.0
        u = rng.random()
        return 0.0 if u < f else (u - f) / (1 - f) * self.window(n, burst, rate)

    def credit(self, n, burst, rate):
        w = self.window(n, burst, rate)
        return burst / 2 * w / n if n > 0 and w > 0 else 0.0

    def __call__(self, rng, a, s, t, world):
        if self.hold is None:
            # A throttled turn is a dip, not a crowd: the first hold is two refills.
            return adaptive(w0=min(2.0, 2 / world["rate"]))(rng, a, s, t, world)
        return self.hold * rng.uniform(0.7, 1)


class Botocore:
    """One AWS SDK client per instance making its one call, as botocore
    (boto/botocore, botocore/retries/) retries it: standard mode's delay
    rand(0, 1) x min(2^(attempt-1), 20) s for a throttle, max_attempts
    (3 by default), the retry quota (500, 5 per throttled retry; it never
    runs out for a single call unless attempts are unlimited), and in
    adaptive mode its client-side rate limiter on top: RateClocker (sends per
    0.5 s time bucket of the wall clock, smoothed 0.8), CubicCalculator (beta
    0.7, scale 0.4), TokenBucket (min rate 0.5/s, capacity max(1, rate),
    max rate = min(new rate, 2 x measured)). The limiter's first throttle
    sets the rate to 0.7 x the measured rate (0 for a client that has sent
    one request, unless the clock crossed a half second since the client
    was made) and turns the bucket on; every later attempt first waits for
    one of its tokens. CUBIC raises the rate only on a success, which ends a
    one-call client, so here its growth never happens. The client is made
    at the instance's first attempt and answers take no time."""

    def __init__(self, adaptive=True, max_attempts=3):
        self.adaptive, self.max_attempts = adaptive, max_attempts

    def __call__(self, rng, a, s, t, world):
        now = world["epoch"] + t
        if "quota" not in s:
            made = world["epoch"] + s["start"]
            s.update(quota=500, enabled=False, clk=[math.floor(made), 0, 0.0],
                     tb=[1.0, 1.0, 0.0, made])  # fill rate, capacity, tokens, last refill
        if self.adaptive:
            self.throttled(s, now)
        if a + 1 >= self.max_attempts or s["quota"] < 5:
            return None
        s["quota"] -= 5
        d = rng.random() * min(2 ** a, 20)
        return d + (self.acquire(s["tb"], now + d) if self.adaptive else 0.0)

    @staticmethod
    def measure(clk, now):
        """RateClocker.record(): the client's own send rate."""
        bucket = math.floor(now * 2) / 2
        clk[1] += 1
        if bucket > clk[0]:
            clk[2] = clk[1] / (bucket - clk[0]) * 0.8 + clk[2] * 0.2
            clk[0], clk[1] = bucket, 0
        return clk[2]

    @staticmethod
    def refill(tb, now):
        tb[2] = min(tb[1], tb[2] + (now - tb[3]) * tb[0])
        tb[3] = now

    def throttled(self, s, now):
        """ClientRateLimiter.on_receiving_response() for a throttling answer."""
        measured, tb = self.measure(s["clk"], now), s["tb"]
        use = min(measured, tb[0]) if s["enabled"] else measured
        new = min(use * 0.7, 2 * measured)  # CubicCalculator.error_received()
        s["enabled"] = True
        self.refill(tb, now)
        tb[0], tb[1] = max(new, 0.5), (new if new >= 1 else 1.0)
        tb[2] = min(tb[2], tb[1])

    def acquire(self, tb, now):
        """TokenBucket.acquire() before the next attempt: the extra wait."""
        self.refill(tb, now)
        if tb[2] >= 1:
            tb[2] -= 1
            return 0.0
        wait = (1 - tb[2]) / tb[0]
        tb[2], tb[3] = 0.0, now + wait
        return wait


POLICIES = {
    "asg-agent's aws_call: equal jitter after a throttle, 1 s .. 4 s": agent(4),
    "the same with a cap of 8 s": agent(8),
    "the same with a cap of 3 s": agent(3),
    "the same with a throttle base of 0.35 s": agent(4, throttle_base=0.35),
    "the same with a jitter floor of c/4": agent(4, floor=0.25),
    "full jitter 0.1 s .. 10 s (asg-agent before)": full_jitter(0.1, 10),
    "same, slowdown x2 per throttle applied within the call": slowdown_in_call(0.1, 10),
    "full jitter 1 s .. 10 s (throttles start at 1 s)": full_jitter(1, 10),
    "full jitter 1 s .. 20 s": full_jitter(1, 20),
    "full jitter 0.5 s .. 30 s": full_jitter(0.5, 30),
    "decorrelated jitter 1 s .. 20 s": decorrelated(1, 20),
    "AWS CLI v1 (legacy retries, then the script's set -e)": cli_legacy,
    "asg-agent's retry_mode = adaptive: w x U(0.7, 1), w = min(max(8 s, 0.1 e), 2 s + 0.7 e), e the "
    "time since its first throttle": adaptive(),
    "the same with a fixed cap of 8 s": adaptive(tail=0),
    "the same with holds of w x U(0.5, 1) (the first choice)": adaptive(floor=0.5),
    "the same without a cap": adaptive(cap=math.inf, tail=0),
    "AWS SDK standard mode (botocore: 3 attempts, rand(0, 1) x 2^n s)": Botocore(adaptive=False),
    "AWS SDK adaptive mode (botocore: standard + CUBIC rate limiter, 3 attempts)": Botocore(),
    "AWS SDK adaptive mode, attempts unlimited (the retry quota ends a call after 100 retries)":
        Botocore(max_attempts=math.inf),
    "asg-agent's retry_mode = adaptive, the scale-out announced: a share (burst / 2) / N at once, the "
    "others' first attempt held U(0, (N - burst) / rate), then adaptive from a 2 / rate window": Announced(),
    "the same with every turn U(0, (N - burst) / rate) (session 8's)": Announced(front=False),
    "the same with [agent] deadline = 1200 (turns over up to 600 s, not 300 s)": Announced(cap=600.0),
    "the same with deadline = 1200 and every turn U(0, (N - burst) / rate)": Announced(cap=600.0, front=False),
    "the same with 0.5 s holds after a throttle (session 7's what-if)": Announced(hold=0.5),
}
BOUNDS = {
    "bound: an oracle that knows W, the instances still waiting, and waits U(0, W / rate)": oracle,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", default="200", help="instances, comma-separated for a table each (default 200)")
    ap.add_argument("--burst", type=float, default=40)
    ap.add_argument("--rate", type=float, default=5)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--spread", type=float, default=1.5, help="seconds over which the N start (default 1.5)")
    ap.add_argument("--boot", type=float, default=0.0,
                    help="each instance's call ready boot x U(0.1, 1) s after its start (default 0)")
    ap.add_argument("--only", default="", help="only the policies whose name matches this regular expression")
    a = ap.parse_args()
    ns = [int(x) for x in a.n.split(",") if x.strip()]
    for k, n in enumerate(ns):
        if k:
            print()
        table(n, a)


def table(n, a):
    boot = f", calls ready boot x U(0.1, 1) after the start with boot = {a.boot:g} s" if a.boot > 0 else ""
    print(f"N={n}, bucket {a.burst:g} burst / {a.rate:g} per s, starts within {a.spread:g} s{boot}, {a.seeds} "
          f"seeds: floor {max(0.0, (n - a.burst) / a.rate):.1f} s\n")
    print("| policy | attempts per instance | throttled share | p50 | p99 | max | instances that gave up |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, pol in list(POLICIES.items()) + list(BOUNDS.items()):
        if a.only and not re.search(a.only, name):
            continue
        rs = [run(pol, n, a.burst, a.rate, s, spread=a.spread, boot=a.boot) for s in range(a.seeds)]
        avg = {k: statistics.mean(r[k] for r in rs) for k in rs[0]}
        label = f"*{name}*" if name in BOUNDS else name
        print(f"| {label} | {avg['att']:.2f} | {100 * avg['thr']:.0f} % | {avg['p50']:.1f} s | {avg['p99']:.1f} s "
              f"| {avg['max']:.1f} s | {avg['failed']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
