"""The same interrupt twice at once is one signal, not a request to end tracing.

timeout(1) sends its signal to its child (sctrace), then to its whole process group:
sctrace took the copy for a second signal and killed the command in its cleanup
(found by review; tests/sctrace/test_sctrace_signals.py runs the whole scenario, whose
outcome depends on when sctrace's handler runs). Driven here through the handler.
"""

import signal

from syscalltrack.ptrace.tracer import Tracer


def test_a_copy_of_the_first_interrupt_is_ignored_and_a_later_one_ends_tracing(helper):
    with Tracer() as tracer:
        tracer.spawn(["sleep", "60"])
        tracer._on_signal(signal.SIGTERM, None)
        tracer._on_signal(signal.SIGTERM, None)  # the copy to the process group
        assert not tracer._stop_requested  # the command's to handle
        tracer._to_relay = 0  # (what the loop does once it has sent it on, or seen it arrive)
        tracer._on_signal(signal.SIGTERM, None)
        assert tracer._stop_requested and tracer._stop_signal == signal.SIGTERM


def test_another_signal_at_once_is_a_second_one(helper):
    with Tracer() as tracer:
        tracer.spawn(["sleep", "60"])
        tracer._on_signal(signal.SIGTERM, None)
        tracer._on_signal(signal.SIGINT, None)
        assert tracer._stop_requested and tracer._stop_signal == signal.SIGINT
