"""Which windows of the built-in real traces are for training and which for evaluation.

A policy tuned on the traffic it is scored on would be scored on memory; so every window
below is either a training window or an evaluation window, and the two sets do not overlap
on any trace (`overlapping_windows`, checked in the tests). The split is in time: training
takes the earlier part of each trace, evaluation the later part, so evaluation is also
forecasting-honest (nothing a policy learned comes from after the traffic it faces).

Offsets are from each trace's first timestamp (WorldCup98: 1998-04-30 21:30 UTC;
AWS ELB: 2014-04-10 00:04 UTC); the calendar times are in each window's ``why``, and
docs/evaluation.md explains the choice. Spec strings (`TraceWindow.spec`) work wherever a
trace is accepted, e.g. ``gnnrl train --trace worldcup98@962h30m+12d``: an episode shorter
than a training window starts at a seeded random offset inside it.
"""

from __future__ import annotations

import dataclasses

from gnnrl.sim.trace_io import parse_duration


@dataclasses.dataclass(frozen=True)
class TraceWindow:
    """One named window of a built-in trace.

    Attributes:
        name: short label (scenario names in reports).
        trace: built-in trace name (`gnnrl.sim.trace_io.BUILTIN_TRACES`).
        start / duration: offset from the trace's first timestamp and length
            (`gnnrl.sim.trace_io.parse_duration` strings).
        why: what the window holds, with calendar times.
    """

    name: str
    trace: str
    start: str
    duration: str
    why: str

    @property
    def start_s(self) -> float:
        return parse_duration(self.start, f"{self.name}.start")

    @property
    def end_s(self) -> float:
        return self.start_s + parse_duration(self.duration, f"{self.name}.duration")

    @property
    def spec(self) -> str:
        """The trace spec, ``TRACE@START+DURATION``."""
        return f"{self.trace}@{self.start}+{self.duration}"


TRAIN_WINDOWS: tuple[TraceWindow, ...] = (
    TraceWindow("wc98-pre-tournament", "worldcup98", "434h30m", "22d",
                "1998-05-19 00:00 to 06-10 00:00: the site before the tournament, daily "
                "cycles between 0.5k and 9k requests/min and an isolated spike to 29k on "
                "05-19 (the earlier days have minutes with 1 request: logging gaps)"),
    TraceWindow("wc98-group-stage", "worldcup98", "962h30m", "12d",
                "1998-06-10 00:00 to 06-22 00:00: the first twelve days of matches, "
                "afternoon and evening surges to 69k-154k requests/min on weekdays, "
                "quieter weekends"),
    TraceWindow("aws-elb-first-days", "aws-elb", "0s", "9d",
                "2014-04-10 00:04 to 04-19 00:04: nine days of one load balancer, spiky "
                "(5-minute growth up to 2.8x at the 99th percentile)"),
)

EVAL_WINDOWS: tuple[TraceWindow, ...] = (
    TraceWindow("wc98-quiet-day", "worldcup98", "1562h30m", "1d",
                "1998-07-05 00:00 to 07-06 00:00: a rest day between the quarter-finals "
                "and the semi-finals, a smooth daily cycle (peak/mean 1.4, 30-minute growth "
                "at most 1.3x)"),
    TraceWindow("wc98-match-day", "worldcup98", "1622h30m", "12h",
                "1998-07-07 12:00 to 24:00: the first semi-final's afternoon and evening, "
                "from 11k to the trace's peak of 229k requests/min (21:41), 3.3x within "
                "30 minutes"),
    TraceWindow("wc98-three-days", "worldcup98", "1418h30m", "3d",
                "1998-06-29 00:00 to 07-02 00:00: two round-of-16 match days with evening "
                "surges to 225k and 215k requests/min, then a rest day"),
    TraceWindow("aws-elb-weekend", "aws-elb", "9d", "2d",
                "2014-04-19 00:04 to 04-21 00:04: Saturday and Sunday, the quietest days "
                "(mean 42 requests per 5 minutes) with isolated spikes"),
    TraceWindow("aws-elb-spike", "aws-elb", "11d", "2d",
                "2014-04-21 00:04 to 04-23 00:04: two weekdays including the trace's "
                "largest spike (656 requests per 5 minutes, 9x the mean)"),
)


#: More evaluation windows, declared after the first results on `EVAL_WINDOWS` were
#: published (the ``real-late`` suite): the rest of the tournament and the last day of the
#: load balancer's file, picked by the calendar alone (the key days left, and the traffic
#: after the final), before any policy ran on them, so that the real-traffic verdict rests
#: on 9 windows instead of 5. Nothing was chosen on them.
LATE_EVAL_WINDOWS: tuple[TraceWindow, ...] = (
    TraceWindow("wc98-second-semi", "worldcup98", "1646h30m", "12h",
                "1998-07-08 12:00 to 24:00: the second semi-final's afternoon and evening"),
    TraceWindow("wc98-final-day", "worldcup98", "1730h30m", "1d",
                "1998-07-12 00:00 to 07-13 00:00: the day of the final"),
    TraceWindow("wc98-after", "worldcup98", "1778h30m", "2d",
                "1998-07-14 00:00 to 07-16 00:00: two days after the tournament, the "
                "traffic falling off"),
    TraceWindow("aws-elb-last-day", "aws-elb", "13d", "1d",
                "2014-04-23 00:04 to 04-24 00:04: the file's last whole day, a weekday"),
)
#: Real-traffic *validation* windows (the ``real-validation`` suite): where a setting of the
#: deployed policy (its guard, its serving defaults) may be chosen, never a result. The
#: week between the training windows and the first evaluation window: the last group-stage
#: matches and the first round-of-16 days. Neither training nor a claim uses them.
VALIDATION_WINDOWS: tuple[TraceWindow, ...] = (
    TraceWindow("wc98-group-end", "worldcup98", "1250h30m", "4d",
                "1998-06-22 00:00 to 06-26 00:00: the last group-stage match days"),
    TraceWindow("wc98-round16-start", "worldcup98", "1346h30m", "3d",
                "1998-06-26 00:00 to 06-29 00:00: the last group matches and the first "
                "round-of-16 days"),
)

#: Fresh evaluation windows (the ``real-fresh`` suite), declared with the model guard's
#: scale-down cap and before any policy ran on them: a setting chosen on
#: `VALIDATION_WINDOWS` to fix a failure seen on `LATE_EVAL_WINDOWS` must be tested on
#: traffic neither choice looked at. Picked by the calendar alone: the quarter-final days,
#: the third-place match, and four days of the traffic after the tournament.
FRESH_EVAL_WINDOWS: tuple[TraceWindow, ...] = (
    TraceWindow("wc98-quarter-finals", "worldcup98", "1514h30m", "2d",
                "1998-07-03 00:00 to 07-05 00:00: the four quarter-finals"),
    TraceWindow("wc98-third-place", "worldcup98", "1682h30m", "2d",
                "1998-07-10 00:00 to 07-12 00:00: a rest day and the third-place match"),
    TraceWindow("wc98-late-july", "worldcup98", "1850h30m", "4d",
                "1998-07-17 00:00 to 07-21 00:00: four days after the tournament"),
)

#: The last unused WorldCup98 days (the ``real-fresh-2`` suite), declared with the model
#: guard's ``last_pods`` window and before any policy ran on them, to test a setting chosen
#: on `VALIDATION_WINDOWS` after `FRESH_EVAL_WINDOWS` were spent. Every whole day of the
#: trace is now taken; the AWS ELB file had none left.
FRESH_2_EVAL_WINDOWS: tuple[TraceWindow, ...] = (
    TraceWindow("wc98-rest-day", "worldcup98", "1586h30m", "1d",
                "1998-07-06 00:00 to 07-07 00:00: the rest day after the quarter-finals"),
    TraceWindow("wc98-day-after-final", "worldcup98", "1754h30m", "1d",
                "1998-07-13 00:00 to 07-14 00:00: the day after the final"),
    TraceWindow("wc98-last-days", "worldcup98", "1946h30m", "5d",
                "1998-07-21 00:00 to 07-26 00:00: the file's last whole days"),
)

#: Every window a policy is scored on (training must not overlap any of them).
ALL_EVAL_WINDOWS: tuple[TraceWindow, ...] = (EVAL_WINDOWS + LATE_EVAL_WINDOWS
                                             + FRESH_EVAL_WINDOWS + FRESH_2_EVAL_WINDOWS)
#: Every window training must stay out of: the evaluation and the validation windows.
HELD_OUT_WINDOWS: tuple[TraceWindow, ...] = ALL_EVAL_WINDOWS + VALIDATION_WINDOWS


def overlapping_windows(a: tuple[TraceWindow, ...], b: tuple[TraceWindow, ...]
                        ) -> list[tuple[TraceWindow, TraceWindow]]:
    """Pairs (x in a, y in b) on the same trace whose time ranges intersect."""
    return [(x, y) for x in a for y in b
            if x.trace == y.trace and x.start_s < y.end_s and y.start_s < x.end_s]
