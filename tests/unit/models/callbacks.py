"""Progress and cancel callbacks for renders whose progress a test does not watch."""


def never() -> bool:
    return False


def ignore(done: int, total: int) -> None:
    del done, total
