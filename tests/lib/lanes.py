"""Where an integration test runs, declared next to the test itself.

    from lanes import exclusive, timing

    @timing
    def test_deadline_is_kept(): ...

@timing: the outcome depends on elapsed time (a deadline, a rate-limit
interval, a throttle window, "finished while X still ran"). Such tests run
one at a time in a lane of their own at normal priority, beside the pool
(whose jobs run at nice 10), so that a busy pool does not stretch what they
measure.

@exclusive: the test measures speed itself (so many calls without a stall,
so many spawns within a bound): it runs alone once everything else is done.

tests/runner.py finds the decorators by reading the file (ast), without
importing it; the decorators themselves only mark the function.
"""

LANES = ("timing", "exclusive")


def timing(fn):
    fn.valet_lane = "timing"
    return fn


def exclusive(fn):
    fn.valet_lane = "exclusive"
    return fn
