"""CloudWatch alarms evaluated from their metrics, on their period, as CloudWatch does.

moto 5.2.5 stores alarms and metric data but never evaluates an alarm: a new alarm is ``OK``
forever (AWS: ``INSUFFICIENT_DATA`` until it has data), SetAlarmState holds until the next
SetAlarmState, and PutMetricAlarm on an existing alarm resets it to ``OK``. Here, following
the Amazon CloudWatch User Guide, "Alarm evaluation" (formerly "Evaluating an alarm" in
"Using Amazon CloudWatch alarms") and "Configuring how CloudWatch alarms treat missing data":

* A new alarm is ``INSUFFICIENT_DATA`` ("Unchecked: Initial alarm creation"). PutMetricAlarm
  on an existing alarm keeps its state and history and replaces its configuration
  (PutMetricAlarm API reference: "When you update an existing alarm, its state is left
  unchanged, but the update completely overwrites the previous configuration of the alarm").
* Every alarm is evaluated once per (CloudWatch) minute, or once per Period for the
  high-resolution periods 10, 20 and 30 s, on the sandbox clock, from the datapoints of its
  metric (Namespace, MetricName, exactly its Dimensions, and its Unit if it names one):
  Period is the length of a datapoint (the alarm's Statistic over the raw values in it:
  SampleCount, Average, Sum, Minimum, Maximum); EvaluationPeriods (N) the most recent
  datapoints evaluated; DatapointsToAlarm (M, default N) how many of them must breach
  ComparisonOperator/Threshold for ``ALARM`` ("M out of N"), else ``OK``.
* Missing data ("How alarm state is evaluated when data is missing"): the evaluation range is
  the N + 2 most recent periods. With at least N real datapoints in it, the N most recent
  real ones are evaluated and TreatMissingData does not matter. With none: ``missing`` ->
  ``INSUFFICIENT_DATA``, ``ignore`` -> the state is kept, ``breaching`` -> ``ALARM``,
  ``notBreaching`` -> ``OK``. With some but fewer than N: the real ones are all used and the
  rest filled per TreatMissingData (``breaching`` fills breach, ``notBreaching`` fills do
  not); for ``missing``/``ignore`` the alarm goes ``ALARM`` if M of the real ones breach,
  ``OK`` if a real one does not breach, else ``INSUFFICIENT_DATA`` / kept. This reproduces
  every row of the guide's two example tables but one (a lone breaching datapoint that is the
  oldest of five: the guide says ``ALARM`` for ``missing``; here ``INSUFFICIENT_DATA``).
* SetAlarmState holds only until the next evaluation: the alarm then returns to the state its
  data gives (SetAlarmState API reference; User Guide: "This temporary state change lasts only
  until the next alarm comparison occurs"). The state the data gives is kept apart
  (``_sbx_evaluated``): Route 53 health checks follow it, never a forced state (Route 53
  Developer Guide, "How Route 53 determines whether a health check is healthy": "Route 53
  monitors the data stream for the corresponding alarm instead of monitoring the alarm state
  ... you can't force the status of a health check to change by using ... SetAlarmState").
* A region outage (unscoped, covering ``monitoring``) darkens the region's CloudWatch: its
  alarms are not evaluated meanwhile (nothing can reach it; state changes resume with the
  next evaluation after the outage), and Route 53 cannot read them (route53.py).
* PutMetricAlarm refuses what CloudWatch refuses and the evaluator would otherwise have to
  guess: Period other than 10, 20, 30 or a multiple of 60; Period x EvaluationPeriods above a
  day (periods under an hour) or seven days; DatapointsToAlarm above EvaluationPeriods; an
  unknown TreatMissingData (PutMetricAlarm API reference).

Time: datapoints are placed on the sandbox clock when they arrive (one without Timestamp at
the clock's current time; one with a Timestamp that much earlier or later), and a CloudWatch
minute lasts ``cloudwatch_minute`` seconds of the clock (profile; realistic 60 s), so a test
steps the clock through periods without waiting for them. The first evaluation of a new
alarm falls one evaluation interval after it was created; evaluations are not "events" a
``step {}`` stops at (as health-check probes are not): step by seconds.

Not evaluated (state stays as set, ``INSUFFICIENT_DATA`` at creation): metric-math alarms
(Metrics), percentile statistics (ExtendedStatistic), anomaly-detection operators and
composite alarms. Alarm actions are never run.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import threading
import time

from moto.cloudwatch.exceptions import ValidationError
from moto.cloudwatch.models import CloudWatchBackend, cloudwatch_backends

from . import backends

log = logging.getLogger("drsandbox.cloudwatch")

_SB = None  # the running Sandbox (set by install)

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
OPERATORS = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
TREAT_MISSING = ("missing", "ignore", "breaching", "notBreaching")
OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"
_RETAIN = object()  # "ignore" with nothing to go on: the state is kept
EPS = 1e-6

# put_metric_data appends to a backend's list: placing the new datapoints on the clock must
# see exactly the ones this call added.
_data_lock = threading.Lock()


def minute() -> float:
    """Seconds of the sandbox clock one CloudWatch minute lasts."""
    return _SB.profile.seconds("cloudwatch_minute")


def _scale() -> float:
    return minute() / 60.0


def _epoch(ts) -> float:
    if isinstance(ts, (int, float)):
        return float(ts)
    if isinstance(ts, str):
        ts = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=datetime.timezone.utc)
    return ts.timestamp()


def wall_of(v: float) -> float:
    """The wall-clock time a sandbox-clock time ``v`` stands for (for reasons and timestamps)."""
    return time.time() - (_SB.clock.monotonic() - v) / _scale()


def _fmt(wall: float) -> str:
    return datetime.datetime.fromtimestamp(wall, datetime.timezone.utc).strftime("%d/%m/%y %H:%M:%S")


def _iso(wall: float) -> str:
    return datetime.datetime.fromtimestamp(wall, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


# --------------------------------------------------------------------------- patches

def _placed_put_metric_data(original):
    def put_metric_data(self, namespace, metric_data):
        stamp = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        members = []
        for m in metric_data:
            m = dict(m)
            if m.get("Timestamp") in (None, ""):
                m["Timestamp"] = stamp  # "now": placed exactly at the clock's current time
            members.append(m)
        with _data_lock:
            before = len(self.metric_data)
            original(self, namespace, members)
            now_v, now_w, k = _SB.clock.monotonic(), time.time(), _scale()
            for datum in self.metric_data[before:]:
                if datum.timestamp is stamp:
                    datum._sbx_t = now_v
                else:
                    datum._sbx_t = now_v - (now_w - _epoch(datum.timestamp)) * k

    put_metric_data.__name__ = "put_metric_data"
    return put_metric_data


def _validate_alarm(period, evaluation_periods, datapoints_to_alarm, treat_missing_data, metric_data_queries) -> None:
    if treat_missing_data is not None and treat_missing_data not in TREAT_MISSING:
        raise ValidationError(f"Option {treat_missing_data} is not supported. Supported options for parameter "
                              "TreatMissingData are missing, ignore, breaching and notBreaching.")
    if metric_data_queries:
        return  # metric math: each query has its own period (not evaluated here)
    if period is not None:
        p = int(period)
        if p not in (10, 20, 30) and (p < 60 or p % 60):
            raise ValidationError("Period must be 10, 20, 30 or a multiple of 60")
        if evaluation_periods is not None:
            limit = 86400 if p < 3600 else 604800
            if p * int(evaluation_periods) > limit:
                raise ValidationError(
                    f"The evaluation period of the alarm (Period x EvaluationPeriods) can't be longer than "
                    f"{'one day' if limit == 86400 else 'seven days'}")
    if datapoints_to_alarm is not None and evaluation_periods is not None and \
            int(datapoints_to_alarm) > int(evaluation_periods):
        raise ValidationError("DatapointsToAlarm must be less than or equal to EvaluationPeriods")


def _stateful_put_metric_alarm(original):
    def put_metric_alarm(self, name, *args, **kwargs):
        _validate_alarm(kwargs.get("period"), kwargs.get("evaluation_periods"), kwargs.get("datapoints_to_alarm"),
                        kwargs.get("treat_missing_data"), kwargs.get("metric_data_queries"))
        old = self.alarms.get(name)
        alarm = original(self, name, *args, **kwargs)
        if old is None:
            alarm.state_value = INSUFFICIENT
            alarm.state_reason = "Unchecked: Initial alarm creation"
            alarm.state_reason_data = None
            alarm._sbx_evaluated = INSUFFICIENT
            alarm._sbx_t0 = _SB.clock.monotonic()
            alarm._sbx_n = 1
            alarm._sbx_evaluations = 0
        else:
            # An update keeps the state and its history, not the configuration.
            for attr in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp", "history"):
                setattr(alarm, attr, getattr(old, attr))
            for attr in ("_sbx_evaluated", "_sbx_t0", "_sbx_n", "_sbx_evaluations", "_sbx_last"):
                if hasattr(old, attr):
                    setattr(alarm, attr, getattr(old, attr))
            if not hasattr(alarm, "_sbx_t0"):
                alarm._sbx_evaluated, alarm._sbx_t0, alarm._sbx_n = old.state_value, _SB.clock.monotonic(), 1
        return alarm

    put_metric_alarm.__name__ = "put_metric_alarm"
    return put_metric_alarm


_installed = False


def install(sandbox) -> None:
    global _SB, _installed
    _SB = sandbox
    if _installed:
        return
    _installed = True
    CloudWatchBackend.put_metric_data = _placed_put_metric_data(CloudWatchBackend.put_metric_data)
    CloudWatchBackend.put_metric_alarm = _stateful_put_metric_alarm(CloudWatchBackend.put_metric_alarm)


# --------------------------------------------------------------------------- evaluation

def evaluable(alarm) -> bool:
    """A single-metric alarm on a standard statistic and a static threshold."""
    return (alarm.rule is None and not alarm.metric_data_queries and not alarm.extended_statistic
            and alarm.statistic in STATISTICS and alarm.comparison_operator in OPERATORS
            and alarm.period and alarm.evaluation_periods and alarm.threshold is not None
            and hasattr(alarm, "_sbx_t0"))


def interval(alarm) -> float:
    """Sandbox seconds between two evaluations: a minute, or the Period when shorter."""
    return min(int(alarm.period), 60) * _scale()


def _same_dimensions(datum, alarm) -> bool:
    a = sorted((d.name, d.value) for d in alarm.dimensions)
    b = sorted((d.name, d.value) for d in datum.dimensions)
    return a == b


def _points(backend, alarm) -> list[tuple[float, object]]:
    """(clock time, datum) of every datapoint of the alarm's metric, oldest first."""
    out = []
    with _data_lock:
        data = list(backend.metric_data)
    now_v, now_w, k = _SB.clock.monotonic(), time.time(), _scale()
    for d in data:
        if d.namespace != alarm.namespace or d.name != alarm.metric_name:
            continue
        if alarm.unit and d.unit != alarm.unit:
            continue
        if not _same_dimensions(d, alarm):
            continue
        v = getattr(d, "_sbx_t", None)
        if v is None:
            v = now_v - (now_w - _epoch(d.timestamp)) * k
        out.append((v, d))
    out.sort(key=lambda p: p[0])
    return out


def _statistic(stat: str, data: list) -> tuple[float, float]:
    """(value, sample count) of ``stat`` over raw datapoints and statistic sets."""
    count = total = 0.0
    lo, hi = math.inf, -math.inf
    for d in data:
        if hasattr(d, "value"):
            count += 1
            total += d.value
            lo, hi = min(lo, d.value), max(hi, d.value)
        else:  # a StatisticValues set
            count += d.sample_count
            total += d.sum
            lo, hi = min(lo, d.min), max(hi, d.max)
    value = {"SampleCount": count, "Sum": total, "Minimum": lo, "Maximum": hi,
             "Average": total / count if count else 0.0}[stat]
    return value, count


def evaluate(alarm, t: float, points: list) -> tuple[object, str, str]:
    """The state the data gives at clock time ``t`` (or _RETAIN), its reason and reason data."""
    k = _scale()
    period = int(alarm.period) * k
    n = int(alarm.evaluation_periods)
    m = int(alarm.datapoints_to_alarm or n)
    treat = alarm.treat_missing_data or "missing"
    breaches, op_text = OPERATORS[alarm.comparison_operator]
    threshold = float(alarm.threshold)
    buckets = []  # newest first: (start, value, samples) or None
    for j in range(n + 2):
        # A datapoint exactly on a boundary belongs to the later period (EPS absorbs float
        # noise in the boundaries, which are sums of scaled periods).
        lo, hi = t - (j + 1) * period - EPS, t - j * period - EPS
        inside = [d for v, d in points if lo <= v < hi]
        buckets.append((lo,) + _statistic(alarm.statistic, inside) if inside else None)
    real = [b for b in buckets if b is not None]
    used = real[:n]
    breaching = sum(1 for b in used if breaches(b[1], threshold))
    fills = max(0, n - len(used))
    if len(used) >= n:
        state = ALARM if breaching >= m else OK
    elif not used:
        state = {"missing": INSUFFICIENT, "ignore": _RETAIN, "breaching": ALARM, "notBreaching": OK}[treat]
    elif treat == "breaching":
        state = ALARM if breaching + fills >= m else OK
    elif treat == "notBreaching":
        state = ALARM if breaching >= m else OK
    elif breaching >= m:
        state = ALARM
    elif breaching < len(used):
        state = OK  # a real datapoint within the threshold
    else:
        state = INSUFFICIENT if treat == "missing" else _RETAIN
    shown = [f"{b[1]:g} ({_fmt(wall_of(b[0]))})" for b in used]
    if not used and fills:
        reason = f"Insufficient Data: {n + 2} datapoint{'s were' if n + 2 > 1 else ' was'} unknown."
        if state is not _RETAIN and state != INSUFFICIENT:
            reason = (f"Threshold Crossed: no datapoints were received for {n + 2} period"
                      f"{'s' if n + 2 > 1 else ''} and {n + 2} missing datapoint"
                      f"{'s were' if n + 2 > 1 else ' was'} treated as [{treat[0].upper() + treat[1:]}].")
    else:
        verb = "was" if len(used) == 1 else "were"
        counted = breaching if state == ALARM else len(used) - breaching
        neg = "" if state == ALARM else "not "
        target = "OK -> ALARM" if state == ALARM else "ALARM -> OK"
        reason = (f"Threshold Crossed: {counted} out of the last {len(used)} datapoint{'s' if len(used) != 1 else ''} "
                  f"[{', '.join(shown)}] {verb} {neg}{op_text} the threshold ({threshold:g}) "
                  f"(minimum {m} datapoint{'s' if m != 1 else ''} for {target} transition).")
        if fills:
            reason += f" {fills} missing datapoint{'s were' if fills > 1 else ' was'} treated as [{treat}]."
    data = {"version": "1.0", "queryDate": _iso(wall_of(t)),
            "startDate": _iso(wall_of(t - (n + 2) * period)), "statistic": alarm.statistic,
            "period": int(alarm.period), "recentDatapoints": [round(b[1], 6) for b in used], "threshold": threshold,
            "evaluatedDatapoints": [{"timestamp": _iso(wall_of(b[0])), "sampleCount": b[2], "value": round(b[1], 6)}
                                    for b in used]}
    return state, reason, json.dumps(data)


class AlarmEvaluator:
    """Evaluates every alarm in every account and region on its own schedule (clock.py)."""

    def __init__(self, sandbox) -> None:
        self.sb = sandbox
        # Held while evaluating (the loop's round, a step's catch-up, a snapshot or restore).
        self.eval_lock = threading.RLock()
        self._thread = threading.Thread(target=self._loop, name="cloudwatch-alarms", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self.sb.stopping.wait(0.05):
            if self.sb.clock.paused:
                continue  # a step evaluates (catch_up) as it passes the due times
            try:
                self.catch_up()
            except Exception:
                log.exception("evaluating alarms failed")

    def region_dark(self, region: str) -> bool:
        """The region's CloudWatch is unreachable (an outage for everyone covering it)."""
        return self.sb.faults.outage(region, "monitoring") is not None

    def catch_up(self, now: float | None = None) -> None:
        """Run every evaluation due by ``now`` (default: the clock), in order, per alarm."""
        with self.eval_lock:
            if now is None:
                now = self.sb.clock.monotonic()
            for account, region, backend in backends(cloudwatch_backends):
                for alarm in list(backend.alarms.values()):
                    try:
                        self._advance(backend, region, alarm, now)
                    except Exception:
                        log.exception("evaluating alarm %s in %s failed", alarm.name, region)

    def _advance(self, backend, region: str, alarm, now: float) -> None:
        if not evaluable(alarm):
            return
        step = interval(alarm)
        t0, n = alarm._sbx_t0, alarm._sbx_n
        if t0 + n * step > now + 1e-9 and t0 <= now + step:
            return  # nothing due (the common case: no datapoints are read)
        if t0 > now + step:  # the clock was set back (a reset): start over from now
            alarm._sbx_t0, alarm._sbx_n = now, 1
            return
        dark = self.region_dark(region)
        points = [] if dark else _points(backend, alarm)
        span = (int(alarm.evaluation_periods) + 2) * int(alarm.period) * _scale()
        while t0 + n * step <= now + 1e-9:
            t = t0 + n * step
            if dark:
                n += 1
                continue
            self._apply(alarm, t, points)
            n += 1
            if not any(t - span - EPS <= v < t - EPS for v, _ in points):
                # An empty evaluation range gives the same answer until a datapoint enters it.
                later = [v for v, _ in points if v >= t - EPS]
                nxt = math.floor((later[0] - t0) / step) + 1 if later else math.floor((now - t0) / step) + 1
                n = max(n, nxt)
        alarm._sbx_n = n

    def _apply(self, alarm, t: float, points: list) -> None:
        state, reason, data = evaluate(alarm, t, points)
        alarm._sbx_evaluations = getattr(alarm, "_sbx_evaluations", 0) + 1
        alarm._sbx_last = t
        if state is _RETAIN:
            return
        alarm._sbx_evaluated = state
        if state != alarm.state_value:
            alarm.update_state(reason, data, state)


def evaluated_state(account: str, region: str, name: str) -> str | None:
    """The state an alarm's data gives (not a SetAlarmState one); None if there is no such alarm."""
    if region not in cloudwatch_backends[account].keys():
        return None
    alarm = cloudwatch_backends[account][region].alarms.get(name)
    if alarm is None:
        return None
    return getattr(alarm, "_sbx_evaluated", alarm.state_value)


def find_alarm(account: str, region: str, name: str):
    if region not in cloudwatch_backends[account].keys():
        return None
    return cloudwatch_backends[account][region].alarms.get(name)
