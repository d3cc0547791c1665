"""bench/throughput.py's rule for runs the hypervisor disturbed: repeat, keep the least stolen."""

from collections.abc import Callable, Iterator

from bench.throughput import Cost, Paced, steady


def runs(*steals: float) -> tuple[Callable[[], Paced], Iterator[float]]:
    """A measurement whose successive runs saw these steals; p99 numbers the run."""
    pending = iter(steals)
    counter = iter(range(1, len(steals) + 1))

    def measure() -> Paced:
        return Paced(1.0, 0.0, next(counter), 0.0, 0, Cost(0.0, 0.0, next(pending)))

    return measure, pending


def test_a_quiet_run_is_kept_as_it_is() -> None:
    measure, pending = runs(0.01, 0.0)
    run, repeats = steady(measure, max_steal=0.02, repeats=2)
    assert (run.p99, repeats) == (1, 0)
    assert list(pending) == [0.0]  # not run again


def test_a_stolen_run_is_repeated_until_one_is_quiet() -> None:
    measure, pending = runs(0.10, 0.05, 0.01, 0.0)
    run, repeats = steady(measure, max_steal=0.02, repeats=5)
    assert (run.p99, repeats) == (3, 2)
    assert list(pending) == [0.0]


def test_repeats_are_bounded_and_the_least_stolen_attempt_is_kept() -> None:
    measure, pending = runs(0.10, 0.04, 0.08, 0.0)
    run, repeats = steady(measure, max_steal=0.02, repeats=2)
    assert (run.p99, repeats) == (2, 2)
    assert list(pending) == [0.0]


def test_no_repeats_keeps_the_first_run_whatever_its_steal() -> None:
    measure, _ = runs(0.5, 0.0)
    run, repeats = steady(measure, max_steal=0.02, repeats=0)
    assert (run.p99, repeats) == (1, 0)
