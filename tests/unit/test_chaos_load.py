"""The steady load of `make chaos` (bench/chaos_load.py Steady): reports go out on their schedule
however long earlier sends block, and the load lasts until both its total and the faults are done.

The schedule's clock is a fake one that the scheduler alone advances (its sleeps move it), so
nothing here depends on how fast the machine is; the blocked sends wait on events, not on time.
A sequential sender (the old ``Load.run``) fails these tests: its schedule waits for each send."""
import threading

from bench.chaos import bar_missed
from bench.chaos_load import Steady

SAFETY = 30      # seconds before a test gives up waiting for threads (never reached when it passes)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def steady(send, rate, total, workers):
    clock = FakeClock()
    issued_at = {}                              # item → the fake time it was handed over

    def make(number):
        issued_at[number] = clock()
        return number
    return Steady(make, send, rate, total, workers, clock=clock, sleep=clock.sleep), issued_at, clock


def test_blocked_sends_do_not_delay_the_schedule():
    release = threading.Event()
    sent, dues, lock = [], {}, threading.Lock()

    def send(number, due):
        with lock:
            dues[number] = due
        if number < 3:                          # the first three hang (gateway killed mid-request)
            assert release.wait(SAFETY)
        with lock:
            sent.append(number)

    schedule, issued_at, clock = steady(send, rate=2.0, total=40, workers=8)
    schedule.stop.set()                         # no faults: just the 40 reports
    runner = threading.Thread(target=schedule.run)
    runner.start()
    # every report is handed over, each at its own time, while the first three still hang
    for _ in range(SAFETY * 100):
        with lock:
            if len(sent) == 37:
                break
        release.wait(0.01)
    assert schedule.issued == 40
    assert issued_at == {n: 1000.0 + n / 2.0 for n in range(40)}
    with lock:
        assert sorted(sent) == list(range(3, 40))
    assert dues == {n: 1000.0 + n / 2.0 for n in range(40)}
    release.set()
    runner.join(SAFETY)
    assert not runner.is_alive() and sorted(sent) == list(range(40))
    assert schedule.in_flight == 0 and schedule.most_in_flight >= 3


def test_more_blocked_sends_than_workers_wait_in_the_queue_with_their_scheduled_time():
    release = threading.Event()
    dues, lock = {}, threading.Lock()

    def send(number, due):
        assert release.wait(SAFETY)             # the gateway is away for every report
        with lock:
            dues[number] = due

    schedule, issued_at, _ = steady(send, rate=1.4, total=30, workers=4)
    schedule.stop.set()
    runner = threading.Thread(target=schedule.run)
    runner.start()
    for _ in range(SAFETY * 100):
        if schedule.issued == 30:
            break
        release.wait(0.01)
    assert schedule.issued == 30 and schedule.in_flight == 30    # 4 sending, 26 queued: all on time
    release.set()
    runner.join(SAFETY)
    assert not runner.is_alive()
    assert dues == {n: 1000.0 + n / 1.4 for n in range(30)}      # each keeps the time it was due
    assert schedule.most_in_flight == 30 and schedule.in_flight == 0


def test_the_load_goes_on_until_the_faults_are_done():
    stopped = threading.Event()

    def send(number, due):
        if number == 24:                        # the faults end while report 24 is out
            stopped.set()
            schedule.stop.set()

    def make(number):
        if number > 24:                         # the schedule's clock runs ahead only until then
            assert stopped.wait(SAFETY)
        return number

    clock = FakeClock()
    schedule = Steady(make, send, 1.4, 10, 2, clock=clock, sleep=clock.sleep)
    runner = threading.Thread(target=schedule.run)
    runner.start()
    runner.join(SAFETY)
    assert not runner.is_alive()
    assert schedule.issued in (25, 26)          # past its 10 reports; at most one more after the stop


def test_the_load_sends_its_total_even_when_the_faults_end_first():
    schedule, _, clock = steady(lambda number, due: None, rate=1.4, total=50, workers=3)
    schedule.stop.set()
    schedule.run()
    assert schedule.issued == 50
    assert clock() == 1000.0 + 49 / 1.4


def test_bar_of_issue_17():
    assert bar_missed(1000, 50, 20.0) == []
    assert bar_missed(999, 52, 19.0) == ["999 reports sent"]
    assert bar_missed(1200, 40, 21.5) == ["40 faults", "21.5 min"]


def test_an_interrupted_run_hands_nothing_more_over():
    schedule = None

    def send(number, due):
        if number == 5:                          # SIGTERM while report 5 is out
            schedule.abandon.set()

    def make(number):
        if number > 5:
            assert schedule.abandon.wait(SAFETY)
        return number

    clock = FakeClock()
    schedule = Steady(make, send, 1.4, 1000, 2, clock=clock, sleep=clock.sleep)
    runner = threading.Thread(target=schedule.run)
    runner.start()
    runner.join(SAFETY)
    assert not runner.is_alive()
    assert schedule.issued in (6, 7)             # far short of its 1,000
