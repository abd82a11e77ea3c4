#!/usr/bin/env python3
"""Retry policies against one shared token bucket: a quick model next to bench/fleet.

    python3 bench/fleet.d/backoff_sim.py [--n 200] [--burst 40] [--rate 5]
                                         [--seeds 20] [--spread 1.5]

N clients (instances) each need one call through a bucket of `burst` tokens
refilled at `rate` per second (a throttled call takes no token), all starting
within `spread` seconds, as in a scale-out. Each retries by its policy until
it gets a token. Printed per policy, averaged over seeds: attempts per instance, and
the time from an instance's first attempt to its success (p50, p99, max),
next to the floor no policy can beat, (N - burst) / rate. This is the bucket
alone, without the fake AWS or the CPU of this machine: it isolates what the
retry policy costs in calls and in tail latency, to compare with what
bench/fleet measures for the real agent.
"""
import argparse
import heapq
import random
import statistics


def run(policy, n, burst, rate, seed, spread=1.5, max_t=900.0):
    rng = random.Random(seed)
    tokens, last = float(burst), 0.0
    starts = [rng.uniform(0, spread) for _ in range(n)]
    ev = [(t, i, 0) for i, t in enumerate(starts)]
    heapq.heapify(ev)
    state = [{"slow": 1.0, "prev": None} for _ in range(n)]
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
            continue
        d = policy(rng, a, state[i])
        if d is None:
            failed += 1
            continue
        heapq.heappush(ev, (t + d, i, a + 1))
    fin = sorted(done[i] - starts[i] for i in range(n) if done[i] is not None)
    return {"att": sum(attempts) / n, "p50": statistics.median(fin),
            "p99": fin[int(0.99 * (len(fin) - 1))], "max": fin[-1], "failed": failed}


def full_jitter(base, cap):
    """delay = U(0, min(cap, base * 2^attempt)): asg-agent's retry_next()."""
    return lambda rng, a, s: rng.random() * min(cap, base * 2 ** a)


def slowdown_in_call(base, cap, most=32):
    """As full_jitter, with the base also doubled per throttle (a per-process
    slowdown applied to the call in progress, not only to the next call)."""
    def policy(rng, a, s):
        s["slow"] = min(most, s["slow"] * 2)
        return rng.random() * min(cap, base * s["slow"] * 2 ** a)
    return policy


def agent(cap, base=0.1, throttle_base=0.5, floor=0.5):
    """asg-agent's aws_call: the first throttling answer of a call doubles the
    process's slowdown and raises the base to 0.5 s x slowdown; from then on
    equal jitter, delay = U(c/2, c) with c = min(cap, base * 2^attempt).
    throttle_base and floor (the jitter's lower bound, as a share of c) are
    here to try variants of it."""
    def policy(rng, a, s):
        if s["prev"] is None:
            s["slow"] = min(32, s["slow"] * 2)
            s["prev"] = max(base * s["slow"], throttle_base * s["slow"])
        c = min(cap, s["prev"] * 2 ** a)
        return c * floor + rng.random() * c * (1 - floor)
    return policy


def decorrelated(base, cap):
    """delay = min(cap, U(base, 3 x previous delay))."""
    def policy(rng, a, s):
        s["prev"] = min(cap, rng.uniform(base, (s["prev"] or base) * 3))
        return s["prev"]
    return policy


def cli_legacy(rng, a, s):
    """AWS CLI v1 / botocore legacy mode: 5 attempts, U(0, 1) x 2^n, then the call fails."""
    return None if a >= 4 else rng.random() * 2 ** a


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
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--burst", type=float, default=40)
    ap.add_argument("--rate", type=float, default=5)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--spread", type=float, default=1.5, help="seconds over which the N start (default 1.5)")
    a = ap.parse_args()
    print(f"N={a.n}, bucket {a.burst:g} burst / {a.rate:g} per s: floor {(a.n - a.burst) / a.rate:.1f} s\n")
    print("| policy | attempts per instance | p50 | p99 | max | instances that gave up |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, pol in POLICIES.items():
        rs = [run(pol, a.n, a.burst, a.rate, s, spread=a.spread) for s in range(a.seeds)]
        avg = {k: statistics.mean(r[k] for r in rs) for k in rs[0]}
        print(f"| {name} | {avg['att']:.2f} | {avg['p50']:.1f} s | {avg['p99']:.1f} s | {avg['max']:.1f} s "
              f"| {avg['failed']:.1f} |")


if __name__ == "__main__":
    main()
