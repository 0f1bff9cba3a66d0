"""CloudWatch alarms evaluated from their metrics on their period (cloudwatch.py).

Plain moto 5.2.5 stores alarms and metric data but never evaluates an alarm: a new alarm is
``OK`` forever, SetAlarmState holds until the next SetAlarmState, PutMetricAlarm on an existing
alarm resets it to ``OK``, and any Period is accepted. Each test names what plain moto does.
AWS's rules: Amazon CloudWatch User Guide, "Alarm evaluation" and "Configuring how CloudWatch
alarms treat missing data"; PutMetricAlarm and SetAlarmState API references.

Every test pauses the sandbox clock and steps it one CloudWatch minute at a time (MINUTE: 0.5 s
on the session sandbox), so evaluations happen at exactly the steps, whatever the machine's load.
"""

from __future__ import annotations

import datetime
import json

import pytest
from botocore.exceptions import ClientError

from gates import MINUTE

NS = "drctl/Test"


def _alarm(cw, name="a", **overrides) -> None:
    spec = dict(AlarmName=name, Namespace=NS, MetricName="m", Statistic="Maximum", Period=60, EvaluationPeriods=1,
                Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold")
    spec.update(overrides)
    cw.put_metric_alarm(**spec)


def _put(cw, *values, metric="m", **extra) -> None:
    cw.put_metric_data(Namespace=NS, MetricData=[{"MetricName": metric, "Value": float(v), **extra} for v in values])


def _state(cw, name="a") -> str:
    return cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]


def _states(cw, *names) -> dict:
    return {a["AlarmName"]: a["StateValue"] for a in cw.describe_alarms(AlarmNames=list(names))["MetricAlarms"]}


def test_new_alarm_is_insufficient_data_until_its_data_says_otherwise(sbx):
    """A new alarm is INSUFFICIENT_DATA ("Unchecked: Initial alarm creation") and stays so while
    its metric has no data; it is evaluated once a minute on the clock, not when asked
    (moto: OK at creation and forever)."""
    cw = sbx.client("cloudwatch", "us-west-2")
    with sbx.paused():
        _alarm(cw)
        alarm = cw.describe_alarms(AlarmNames=["a"])["MetricAlarms"][0]
        assert (alarm["StateValue"], alarm["StateReason"]) == ("INSUFFICIENT_DATA", "Unchecked: Initial alarm creation")
        _put(cw, 5)
        assert _state(cw) == "INSUFFICIENT_DATA"  # not evaluated before its minute is up
        sbx.step(MINUTE)
        alarm = cw.describe_alarms(AlarmNames=["a"])["MetricAlarms"][0]
        assert alarm["StateValue"] == "ALARM"
        assert alarm["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoint [5 (")
        assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == [5.0]


def test_alarm_follows_its_metric_period_by_period(sbx):
    """Breaching data -> ALARM, data within the threshold -> OK, each at the evaluation after
    the period it fell in; once the metric stops, the last datapoints stay in the evaluation
    range (EvaluationPeriods + 2 periods) and then the alarm is INSUFFICIENT_DATA (moto: OK
    throughout)."""
    cw = sbx.client("cloudwatch", "us-west-2")
    with sbx.paused():
        _alarm(cw)
        seen = [_state(cw)]
        for value in (5, 0, 3, None, None, None):
            if value is not None:
                _put(cw, value)
            sbx.step(MINUTE)
            seen.append(_state(cw))
    assert seen == ["INSUFFICIENT_DATA", "ALARM", "OK", "ALARM", "ALARM", "ALARM", "INSUFFICIENT_DATA"]


def test_m_out_of_n(sbx):
    """DatapointsToAlarm 2 of EvaluationPeriods 3: two breaching periods among the last three
    alarm, one does not; the breaching ones need not be consecutive (moto: OK whatever the
    data)."""
    cw = sbx.client("cloudwatch", "us-west-2")
    with sbx.paused():
        _alarm(cw, EvaluationPeriods=3, DatapointsToAlarm=2)
        seen = []
        for value in (5, 0, 0, 5, 0, 5):
            _put(cw, value)
            sbx.step(MINUTE)
            seen.append(_state(cw))
    # 1 real datapoint (breaching, < M): insufficient; [5,0]: a real one within -> OK;
    # [5,0,0] OK; [0,0,5] OK; [0,5,0] OK; [5,0,5] ALARM.
    assert seen == ["INSUFFICIENT_DATA", "OK", "OK", "OK", "OK", "ALARM"]
    reason = cw.describe_alarms(AlarmNames=["a"])["MetricAlarms"][0]["StateReason"]
    assert reason.startswith("Threshold Crossed: 2 out of the last 3 datapoints")


@pytest.mark.parametrize("statistic,operator,expected", [
    ("Average", "GreaterThanOrEqualToThreshold", "ALARM"),      # 3 >= 3
    ("Sum", "GreaterThanThreshold", "ALARM"),                   # 9 > 3
    ("Minimum", "GreaterThanOrEqualToThreshold", "OK"),         # 1 < 3
    ("Maximum", "LessThanOrEqualToThreshold", "OK"),            # 6 > 3
    ("SampleCount", "LessThanThreshold", "OK"),                 # 3 == 3
    ("SampleCount", "LessThanOrEqualToThreshold", "ALARM"),     # 3 <= 3
])
def test_statistics_over_a_period(sbx, statistic, operator, expected):
    """The alarm's Statistic over every value in the period (1, 2 and 6, and a statistic set),
    compared with its ComparisonOperator (moto: never compared, OK)."""
    cw = sbx.client("cloudwatch", "us-west-2")
    with sbx.paused():
        _alarm(cw, Statistic=statistic, ComparisonOperator=operator, Threshold=3.0)
        _put(cw, 1, 2)
        cw.put_metric_data(Namespace=NS, MetricData=[{"MetricName": "m", "StatisticValues": {
            "SampleCount": 1, "Sum": 6, "Minimum": 6, "Maximum": 6}}])
        sbx.step(MINUTE)
        assert _state(cw) == expected


def test_treat_missing_data(sbx):
    """With no data at all: missing -> INSUFFICIENT_DATA, breaching -> ALARM, notBreaching ->
    OK, ignore -> the state is kept; once data stopped, ``ignore`` keeps the last state while
    ``missing`` returns to INSUFFICIENT_DATA (moto: all OK)."""
    cw = sbx.client("cloudwatch", "us-west-2")
    modes = ("missing", "breaching", "notBreaching", "ignore")
    with sbx.paused():
        for mode in modes:
            _alarm(cw, name=mode, TreatMissingData=mode)
        sbx.step(MINUTE)
        assert _states(cw, *modes) == {"missing": "INSUFFICIENT_DATA", "breaching": "ALARM", "notBreaching": "OK",
                                       "ignore": "INSUFFICIENT_DATA"}
        _put(cw, 5)
        sbx.step(MINUTE)
        assert set(_states(cw, *modes).values()) == {"ALARM"}
        sbx.step(3 * MINUTE)  # past the evaluation range (1 + 2 periods): nothing in it
        assert _states(cw, *modes) == {"missing": "INSUFFICIENT_DATA", "breaching": "ALARM", "notBreaching": "OK",
                                       "ignore": "ALARM"}


def test_missing_data_table_of_the_user_guide(sbx):
    """Rows of the User Guide's table (3 of 3, five periods retrieved): "0 - - - -" (one
    datapoint within the threshold, then nothing) is OK for every TreatMissingData, and
    "- - - - X" (one breaching datapoint, the most recent) is INSUFFICIENT_DATA / kept / ALARM
    / OK (moto: OK for all)."""
    cw = sbx.client("cloudwatch", "us-west-2")
    modes = ("missing", "breaching", "notBreaching", "ignore")
    with sbx.paused():
        for mode in modes:
            _alarm(cw, name=f"ok-{mode}", TreatMissingData=mode, EvaluationPeriods=3, MetricName="zero")
            _alarm(cw, name=f"x-{mode}", TreatMissingData=mode, EvaluationPeriods=3, MetricName="breach")
        _put(cw, 0, metric="zero")
        _put(cw, 5, metric="breach")
        sbx.step(MINUTE)
        got = _states(cw, *[f"{p}-{m}" for p in ("ok", "x") for m in modes])
    assert {m: got[f"ok-{m}"] for m in modes} == dict.fromkeys(modes, "OK")
    assert {m: got[f"x-{m}"] for m in modes} == {"missing": "INSUFFICIENT_DATA", "ignore": "INSUFFICIENT_DATA",
                                                "breaching": "ALARM", "notBreaching": "OK"}


def test_set_alarm_state_holds_only_until_the_next_evaluation(sbx):
    """SetAlarmState shows at once and lasts until the next evaluation, which puts the alarm
    back where its data says (SetAlarmState API reference; moto: the forced state stays)."""
    cw = sbx.client("cloudwatch", "us-west-2")
    with sbx.paused():
        _alarm(cw)
        _put(cw, 0)
        sbx.step(MINUTE)
        assert _state(cw) == "OK"
        cw.set_alarm_state(AlarmName="a", StateValue="ALARM", StateReason="testing the gate")
        assert _state(cw) == "ALARM"
        _put(cw, 0)
        sbx.step(MINUTE)
        assert _state(cw) == "OK"
    history = sbx.control("GET", "/_sandbox/health")[1]["alarms"]
    assert [(a["name"], a["state"], a["evaluated"]) for a in history] == [("a", "OK", "OK")]


def test_put_metric_alarm_on_an_existing_alarm_keeps_its_state(sbx):
    """Updating an alarm keeps its state until the next evaluation, which uses the new
    configuration (PutMetricAlarm API reference; moto: back to OK at once)."""
    cw = sbx.client("cloudwatch", "us-west-2")
    with sbx.paused():
        _alarm(cw)
        _put(cw, 5)
        sbx.step(MINUTE)
        assert _state(cw) == "ALARM"
        _alarm(cw, Threshold=10.0)
        assert _state(cw) == "ALARM"
        _put(cw, 5)
        sbx.step(MINUTE)
        assert _state(cw) == "OK"


def test_datapoints_are_placed_by_their_timestamp(sbx):
    """A datapoint stamped 100 s ago is within the evaluation range of a 1-period alarm (3
    periods) and counts; one stamped 10 minutes ago does not (moto: never evaluated). With a
    Unit, only datapoints of that unit count; the dimensions must be exactly the alarm's."""
    cw = sbx.client("cloudwatch", "us-west-2")
    now = datetime.datetime.now(datetime.timezone.utc)
    with sbx.paused():
        _alarm(cw, name="recent", MetricName="recent")
        _alarm(cw, name="old", MetricName="old")
        _alarm(cw, name="unit", MetricName="u", Unit="Seconds")
        _alarm(cw, name="dims", MetricName="d", Dimensions=[{"Name": "Gate", "Value": "primary"}])
        _put(cw, 5, metric="recent", Timestamp=now - datetime.timedelta(seconds=100))
        _put(cw, 5, metric="old", Timestamp=now - datetime.timedelta(minutes=10))
        _put(cw, 5, metric="u", Unit="Count")
        _put(cw, 5, metric="d", Dimensions=[{"Name": "Gate", "Value": "primary"}, {"Name": "Extra", "Value": "x"}])
        sbx.step(MINUTE)
        assert _states(cw, "recent", "old", "unit", "dims") == {
            "recent": "ALARM", "old": "INSUFFICIENT_DATA", "unit": "INSUFFICIENT_DATA", "dims": "INSUFFICIENT_DATA"}
        _put(cw, 5, metric="u", Unit="Seconds")
        _put(cw, 5, metric="d", Dimensions=[{"Name": "Gate", "Value": "primary"}])
        sbx.step(MINUTE)
        assert _states(cw, "unit", "dims") == {"unit": "ALARM", "dims": "ALARM"}


def test_a_dark_region_evaluates_nothing(sbx):
    """While the region's CloudWatch is dark (a region outage), its alarms are not evaluated;
    the evaluations resume once it is back (moto: no evaluation, no outage)."""
    cw = sbx.client("cloudwatch", "us-west-2")

    def shown() -> tuple:
        a = sbx.control("GET", "/_sandbox/health")[1]["alarms"][0]
        return a["state"], a["evaluations"], a["dark"]

    with sbx.paused():
        _alarm(cw)
        _put(cw, 5)
        sbx.step(MINUTE)
        assert shown() == ("ALARM", 1, False)
        sbx.fault(region="us-west-2", kind="outage")
        sbx.step(4 * MINUTE)  # the datapoint leaves the evaluation range meanwhile
        assert shown() == ("ALARM", 1, True)
        sbx.control("DELETE", "/_sandbox/faults")
        sbx.step(MINUTE)
        assert shown() == ("INSUFFICIENT_DATA", 2, False)


@pytest.mark.parametrize("overrides,message", [
    ({"Period": 15}, "Period must be 10, 20, 30 or a multiple of 60"),
    ({"Period": 90}, "Period must be 10, 20, 30 or a multiple of 60"),
    ({"EvaluationPeriods": 2, "DatapointsToAlarm": 3}, "DatapointsToAlarm must be less than or equal"),
    ({"Period": 600, "EvaluationPeriods": 145}, "can't be longer than one day"),
    ({"TreatMissingData": "sometimes"}, "TreatMissingData"),
])
def test_put_metric_alarm_validation(sbx, overrides, message):
    """What CloudWatch refuses (PutMetricAlarm API reference) is refused (moto accepts it)."""
    cw = sbx.client("cloudwatch", "us-west-2")
    with pytest.raises(ClientError) as e:
        _alarm(cw, **overrides)
    assert e.value.response["Error"]["Code"] == "ValidationError"
    assert message in e.value.response["Error"]["Message"]
    assert cw.describe_alarms()["MetricAlarms"] == []
